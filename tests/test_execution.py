"""Running steps for real: outcome classes, retries per class, Spot fallback, timeouts, one task per try.

Every test runs a catalog job through ``dag.test()`` (the real task runner, SQLite metadata DB, the real
trigger run in line) against the local AWS, with the task's behaviour chosen by a local-AWS scenario.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import TaskDeferred

from tests.support import ONE_STEP_JOB, container_environment


def _tag(task: dict, key: str) -> str:
    return next(t["value"] for t in task["tags"] if t["key"] == key)


def _try(task: dict) -> int:
    return int(_tag(task, "ecsjobs:try"))


NO_SPOT_CAPACITY = (
    "Capacity is unavailable at this time. Please try again later or select a different availability zone."
)
QUICK = {"provisioning": 0.1, "pending": 0.1, "duration": 0.5, "stopping": 0.2}


def test_exit_0_succeeds_on_the_first_try(run_job):
    result = run_job("ok", {**QUICK})
    assert (result.state, len(result.tasks)) == ("success", 1)


@pytest.mark.parametrize(
    "case, scenario",
    [
        ("app_failure", {**QUICK, "exit_code": 1}),
        (
            "oom",
            {
                **QUICK,
                "exit_code": 137,
                "container_reasons": {
                    "batch-container": "OutOfMemoryError: Container killed due to memory usage"
                },
            },
        ),
    ],
)
def test_application_failures_and_oom_are_not_retried(run_job, case, scenario):
    result = run_job(case, scenario)
    assert result.state == "failed"
    assert len(result.tasks) == 1  # retries: 3 in the catalog, but these classes get none by default


def test_an_application_failure_is_retried_when_the_job_says_so(run_job):
    result = run_job(
        "app_retry", {**QUICK, "exit_code": 2}, times=1, extra="retry_policy: {application_failure: 1}\n"
    )
    assert result.state == "success"
    assert [_try(t) for t in result.tasks] == [1, 2]


def test_failed_to_start_is_retried(run_job):
    scenario = {
        **QUICK,
        "stop_code": "TaskFailedToStart",
        "stopped_reason": "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
    }
    result = run_job("no_pull", scenario, times=1)
    assert result.state == "success"
    assert [_try(t) for t in result.tasks] == [1, 2]
    assert result.tasks[0]["lastStatus"] == "STOPPED"


def test_a_spot_interruption_with_exit_0_is_no_success_and_the_retry_runs_on_demand(run_job):
    result = run_job(
        "spot_loss",
        {**QUICK, "stop_code": "SpotInterruption", "exit_code": 0},
        launch="fargate_spot",
        times=1,
    )
    assert result.state == "success"
    first, second = result.tasks
    assert first["capacityProviderName"] == "FARGATE_SPOT"
    assert second["launchType"] == "FARGATE" and not second.get("capacityProviderName")
    assert [_tag(t, "ecsjobs:launch") for t in result.tasks] == ["fargate_spot", "on_demand"]


def test_spot_without_capacity_falls_back_to_on_demand_within_the_try(run_job, aws):
    aws.post(
        "/_local/faults",
        {
            "action": "RunTask",
            "kind": "failure",
            "times": 1,
            "match": {"launch": "FARGATE_SPOT"},
            "reason": NO_SPOT_CAPACITY,
        },
    )
    result = run_job("spot_capacity", {**QUICK}, launch="fargate_spot")
    assert result.state == "success"
    (task,) = result.tasks
    assert task["launchType"] == "FARGATE"


def test_no_capacity_in_earlier_tries_counts_against_its_retry_budget(run_job, aws, monkeypatch):
    from ecsjobs import operators

    monkeypatch.setattr(
        operators, "CAPACITY_RETRY_DELAYS", (0.1, 0.1)
    )  # within a try; the test needs no wait
    aws.post(
        "/_local/faults",
        {
            "action": "RunTask",
            "kind": "failure",
            "match": {"env": {"CASE": "no_room"}},
            "reason": "RESOURCE:CPU",
        },
    )
    since = time.time()

    result = run_job("no_room", {**QUICK}, extra="retries: 5\nretry_policy: {no_capacity: 1}\n")

    assert (result.state, result.tasks) == ("failed", [])
    run_tasks = aws.get(f"/_local/calls?action=RunTask&since={since}")
    assert len(run_tasks) == 2 * 3  # two tries (one retry allowed), three RunTask attempts each


def test_fallback_after_0_keeps_spot(run_job):
    result = run_job(
        "spot_only",
        {**QUICK, "stop_code": "SpotInterruption", "exit_code": 143},
        launch="fargate_spot",
        times=1,
        extra="fallback_after: 0\n",
    )
    assert result.state == "success"
    assert [t.get("capacityProviderName") for t in result.tasks] == ["FARGATE_SPOT", "FARGATE_SPOT"]


def test_a_task_stopped_by_someone_else_fails_without_retry(run_job, aws, ecs):

    def stop_when_running():
        for _ in range(200):
            running = [
                t
                for t in aws.get("/_local/tasks")
                if {"name": "CASE", "value": "stopped"} in container_environment(t)
                and t["lastStatus"] == "RUNNING"
            ]
            if running:
                ecs.stop_task(cluster="batch-jobs", task=running[0]["taskArn"], reason="ops: cleaning up")
                return
            time.sleep(0.1)

    stopper = threading.Thread(target=stop_when_running)
    stopper.start()
    result = run_job("stopped", {**QUICK, "duration": 30})
    stopper.join()
    assert result.state == "failed"
    (task,) = result.tasks


def test_the_step_timeout_stops_the_ecs_task_while_deferred(run_job, ecs):
    result = run_job("slow", {**QUICK, "duration": 60}, extra="timeout: 3s\n")
    assert result.state == "failed"
    (task,) = result.tasks  # timed_out gets no retry by default
    described = ecs.describe_tasks(cluster="batch-jobs", tasks=[task["taskArn"]])["tasks"][0]
    assert described["lastStatus"] == "STOPPED"
    assert described["stopCode"] == "UserInitiated"
    assert described["stoppedReason"].startswith("Stopped by Airflow (ecsjobs): timed out after")


def test_a_resumed_try_finds_its_own_task_instead_of_starting_another(config_dir, monkeypatch, aws):
    """A worker crash is simulated by running the same try's ``execute`` twice, as a resumed try would."""
    from ecsjobs.catalog import load_catalog
    from ecsjobs.factory import build_dag

    (config_dir / "jobs" / "crash.yaml").write_text(
        ONE_STEP_JOB.format(
            family="data-processor", container="batch-container", launch="fargate", case="crash", extra=""
        )
    )
    aws.post("/_local/scenarios", {"match": {"env": {"CASE": "crash"}}, "scenario": {**QUICK, "duration": 1}})
    catalog = load_catalog(config_dir, "local")
    operator = build_dag(catalog.jobs["crash"], catalog.environment, "local").get_task("run")

    def attempt(try_number: int) -> str:
        ti = SimpleNamespace(
            dag_id="crash",
            task_id="run",
            run_id="manual__crash",
            map_index=-1,
            try_number=try_number,
            start_date=datetime.now(UTC),
            xcom_push=lambda **kw: None,
        )
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute({"ti": ti})
        return deferred.value.trigger.task_arn

    first = attempt(1)
    assert attempt(1) == first  # the task is still running: adopted
    deadline = time.monotonic() + 30
    while next(t for t in aws.get("/_local/tasks") if t["taskArn"] == first)["lastStatus"] != "STOPPED":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert attempt(1) == first  # already finished: still its own task, no second one
    second = attempt(2)  # a new try after a finished task starts a new one
    assert second != first
    assert (
        len(
            [
                t
                for t in aws.get("/_local/tasks")
                if {"name": "CASE", "value": "crash"} in container_environment(t)
            ]
        )
        == 2
    )


def test_a_step_uses_the_output_a_previous_step_logged(run_job, aws):
    """The summary line a step logs last is its XCom return value, templated into the next step."""
    summary = {"records_processed": 7, "errors": 0, "output": "s3://lake/extract/2026-04-01/"}
    aws.post(
        "/_local/scenarios",
        {"match": {"env": {"STAGE": "extract"}}, "scenario": {**QUICK, "summary": summary}},
    )
    extra = """\
    steps:
      extract:
        environment: {STAGE: extract}
      load:
        depends_on: [extract]
        environment:
          INPUT: "{{ ti.xcom_pull(task_ids='extract')['output'] }}"
          EXTRACT_TASK: "{{ ti.xcom_pull(task_ids='extract', key='ecs_task_arn') }}"
    """
    from ecsjobs.loader import load_dags  # noqa: F401 - the fixture loads the job

    result = run_job("handover", None, extra=extra)
    assert result.state == "success"
    extract, load = sorted(result.tasks, key=lambda t: t["createdAt"])
    assert {"name": "INPUT", "value": "s3://lake/extract/2026-04-01/"} in container_environment(load)
    assert {"name": "EXTRACT_TASK", "value": extract["taskArn"]} in container_environment(load)


SENSOR_DAG = """
from airflow.sdk import DAG
from ecsjobs.sensors import EcsTaskCompletionSensor

with DAG(dag_id="external_task", schedule=None):
    EcsTaskCompletionSensor(
        task_id="wait",
        task_arn="{{ dag_run.conf['task_arn'] }}",
        cluster="batch-jobs",
        aws_conn_id="aws_local",
        poll_interval=1,
    )
"""


@pytest.mark.parametrize(
    "scenario, state",
    [
        ({**QUICK}, "success"),
        ({**QUICK, "exit_code": 3}, "failed"),
        ({**QUICK, "stop_code": "SpotInterruption", "exit_code": 0}, "failed"),
    ],
)
def test_the_completion_sensor_judges_a_task_started_elsewhere(
    aws, ecs, airflow_db, tmp_path, monkeypatch, scenario, state
):
    (tmp_path / "external_task.py").write_text(SENSOR_DAG)
    from airflow import settings

    monkeypatch.setattr(settings, "DAGS_FOLDER", str(tmp_path))  # dag.test() needs the DAG in a bundle
    aws.post("/_local/scenarios", {"match": {"started_by": "elsewhere"}, "scenario": scenario})
    network = {
        "awsvpcConfiguration": {
            "subnets": ["subnet-0local0000000001a"],
            "securityGroups": ["sg-0local00000000001"],
        }
    }
    started = ecs.run_task(
        cluster="batch-jobs",
        taskDefinition="data-processor",
        launchType="FARGATE",
        startedBy="elsewhere",
        networkConfiguration=network,
    )
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(tmp_path)).get_dag("external_task")
    dag_run = dag.test(run_conf={"task_arn": started["tasks"][0]["taskArn"]})

    (ti,) = dag_run.get_task_instances()
    assert ti.state == state
