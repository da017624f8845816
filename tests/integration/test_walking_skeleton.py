"""End to end through the real Airflow task runner: a catalog job runs on the local ECS and is judged.

``dag.test()`` runs the real task runner against a real SQLite metadata DB and, when the operator defers,
runs the real trigger in line; the ECS calls go over HTTP to the local AWS server.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import container_environment

JOB = """\
description: Walking skeleton job.
schedule: "0 2 * * *"
start_date: 2026-01-01
task_definition: data-processor
container: batch-container
retries: 0
environment:
  JOB_DATE: "{{ ds }}"
  REGION: eu-west-1
"""


@pytest.fixture
def skeleton_dag(config_dir: Path, monkeypatch, airflow_db, aws):
    (config_dir / "jobs" / "skeleton.yaml").write_text(textwrap.dedent(JOB))
    monkeypatch.setenv("ECSJOBS_CONFIG_DIR", str(config_dir))
    from ecsjobs.build.loader import load_dags

    return load_dags()["skeleton"]


@pytest.fixture
def trigger_runs(monkeypatch) -> list[str]:
    """Record each run of the waiting trigger (observing it, not replacing it)."""
    from ecsjobs.waiting.triggers import EcsTaskWaitTrigger

    runs: list[str] = []
    original = EcsTaskWaitTrigger.run

    def run(self):
        runs.append(self.task_arn)
        return original(self)

    monkeypatch.setattr(EcsTaskWaitTrigger, "run", run)
    return runs


def _run(dag, day: int):
    logical_date = datetime(2026, 3, day, 2, tzinfo=UTC)
    dag_run = dag.test(logical_date=logical_date)
    (ti,) = dag_run.get_task_instances()
    return dag_run, ti


def _task_for(aws, ds: str) -> dict:
    tasks = [
        t for t in aws.get("/_local/tasks") if {"name": "JOB_DATE", "value": ds} in container_environment(t)
    ]
    assert len(tasks) == 1, tasks
    return tasks[0]


def test_exit_0_succeeds_with_catalog_overrides_and_a_deferred_wait(skeleton_dag, aws, trigger_runs):
    dag_run, ti = _run(skeleton_dag, 2)

    assert dag_run.state == "success"
    assert ti.state == "success"
    task = _task_for(aws, "2026-03-02")
    assert task["family"] == "data-processor"
    assert task["launchType"] == "FARGATE"
    assert task["overrides"]["containerOverrides"][0]["name"] == "batch-container"
    assert {"name": "REGION", "value": "eu-west-1"} in task["overrides"]["containerOverrides"][0][
        "environment"
    ]
    assert trigger_runs == [task["taskArn"]]


def test_exit_1_fails_naming_the_exit_code(skeleton_dag, aws, trigger_runs, capfd):
    aws.post(
        "/_local/scenarios",
        {"match": {"family": "data-processor"}, "scenario": {"exit_code": 1, "duration": 1}},
    )

    dag_run, ti = _run(skeleton_dag, 3)

    assert dag_run.state == "failed"
    assert ti.state == "failed"
    task = _task_for(aws, "2026-03-03")
    assert trigger_runs == [task["taskArn"]]
    # dag.test() prints the task's log (with the failure) to stdout
    assert "container 'batch-container' exited with code 1" in capfd.readouterr().out
