"""Waiting steps outlive the Airflow components that wait for them, and a user can stop one.

The components are killed with SIGKILL (their whole process group: the scheduler's LocalExecutor workers
too), as a crashed host or an OOM kill would, then started again as ``make run`` starts them.
"""

from __future__ import annotations

import time

import boto3
import pytest
from airflow import __version__ as airflow_version
from packaging.version import Version

from ecsjobs.decisions.outcome import kill_stop_reason
from tests.tier.harness import Tier, tag

pytestmark = pytest.mark.tier

SHARDS = 4  # tier_fanout's matrix: shard: [a, b, c, d]
KILL_REASON = kill_stop_reason("the Airflow task was stopped (marked failed or cleared)")
TRIGGER_ON_KILL = Version(airflow_version) >= Version("3.3")  # the triggerer calls on_kill from 3.3 on


@pytest.mark.parametrize("component", ["triggerer", "scheduler"])
def test_waiting_steps_finish_after_a_killed_component_restarts_with_no_duplicate_task(
    tier: Tier, component: str
):
    dag_id, run_id = "tier_fanout", f"killed-{component}"
    # Long enough that every shard is still running while the component is down and comes back.
    tier.scenario({"env": {"RUN_ID": run_id}}, {"duration": 30})
    tier.unpause(dag_id)
    tier.trigger(dag_id, run_id)
    tier.wait(lambda: _states(tier, dag_id, run_id) == ["deferred"] * SHARDS, 120, "every shard waiting")
    running = [tier.ecs_tasks(dag_id, "each.run", run_id, i) for i in range(SHARDS)]
    assert [len(tasks) for tasks in running] == [1] * SHARDS
    assert "STOPPED" not in [tasks[0]["lastStatus"] for tasks in running]

    tier.stack.restart(component)

    assert tier.wait_for_run(dag_id, run_id)["state"] == "success"
    assert _states(tier, dag_id, run_id) == ["success"] * SHARDS
    for map_index, before in enumerate(running):
        tasks = tier.ecs_tasks(dag_id, "each.run", run_id, map_index)
        assert [t["taskArn"] for t in tasks] == [before[0]["taskArn"]]  # the same one task, no second
        assert tag(tasks[0], "ecsjobs:try") == "1"
    tries = [ti["try_number"] for ti in tier.task_instances(dag_id, run_id) if ti["task_id"] == "each.run"]
    assert tries == [1] * SHARDS


def test_marking_a_waiting_step_failed_stops_its_ecs_task(tier: Tier):
    dag_id, run_id = "tier_single", "marked-failed"
    tier.scenario({"env": {"RUN_ID": run_id}}, {"duration": 300})
    tier.unpause(dag_id)
    tier.trigger(dag_id, run_id)
    ti_path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/run"
    tier.wait(lambda: tier.api.call("GET", ti_path)["triggerer_job"], 120, "a triggerer taking the wait")
    picked_up = time.time()  # the trigger must be running for a kill to reach it: wait for its first poll
    tier.wait(lambda: _polled_since(tier, picked_up), 30, "the trigger polling ECS")
    (task,) = tier.ecs_tasks(dag_id, "run", run_id)

    tier.api.call("PATCH", ti_path, {"new_state": "failed"})  # the UI's "Mark as failed"

    ecs = boto3.client("ecs", endpoint_url=tier.aws_url, aws_access_key_id="l", aws_secret_access_key="l")

    def described() -> dict:
        return ecs.describe_tasks(cluster="batch-jobs", tasks=[task["taskArn"]])["tasks"][0]

    if TRIGGER_ON_KILL:
        stopped = tier.wait(lambda: (d := described())["lastStatus"] == "STOPPED" and d, 60, "a stopped task")
        assert (stopped["stopCode"], stopped["stoppedReason"]) == ("UserInitiated", KILL_REASON)
    else:  # Airflow 3.2: the trigger is dropped without a hook, the ECS task runs to its own end (README)
        tier.wait(lambda: tier.api.call("GET", ti_path)["trigger"] is None, 60, "the trigger dropped")
        tier.wait(lambda: not _polled_since(tier, time.time() - 3), 60, "the triggerer to stop polling")
        assert described()["lastStatus"] == "RUNNING"
        ecs.stop_task(cluster="batch-jobs", task=task["taskArn"], reason="tier test cleanup")
    ti = tier.api.call("GET", ti_path)
    assert (ti["state"], ti["try_number"]) == ("failed", 1)
    assert len(tier.ecs_tasks(dag_id, "run", run_id)) == 1


def _states(tier: Tier, dag_id: str, run_id: str) -> list[str]:
    mapped = [ti for ti in tier.task_instances(dag_id, run_id) if ti["task_id"] == "each.run"]
    return [ti["state"] for ti in sorted(mapped, key=lambda ti: ti["map_index"])]


def _polled_since(tier: Tier, moment: float) -> bool:
    """Whether anything asked ECS about tasks since ``moment`` (epoch seconds): only the triggerer's poller
    does while no step is starting or finishing."""
    return bool(tier.aws("GET", f"/_local/calls?action=DescribeTasks&since={moment}"))
