"""A succeeded ECS task is never started again, on the real scheduler, with the machine busy.

Airflow can take the stale "task finished" of a worker that deferred for a failure of the resumed try when
the trigger fires within seconds (apache/airflow#72716, #66374): the scheduler then retries a step whose
ECS task succeeded. Only the real scheduler, executor and triggerer show it, and a loaded machine more often:
many 1 to 3 s mapped steps (a backfill and a manual run without a logical date), with a CPU-bound process
beside the stack. ``tier_burst`` resumes as soon as its tasks stop (``resume_delay: 0s``), so the race
happens; its retries adopt the succeeded tasks. Before adoption, 11 of the 21 task instances that ran started
a second ECS task after a succeeded one, or failed although their ECS task succeeded (``retries: 0``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.tier.harness import Tier, environment, tag

pytestmark = pytest.mark.tier

DAG_ID = "tier_burst"  # matrix shard: [a, b, c, d]; steps first -> second (retries: 0)
SHARDS = 4
STEPS = ("each.first", "each.second")
DURATIONS = {"a": 1, "b": 2, "c": 3, "d": 1.5}  # seconds each shard's tasks run


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """A CPU-bound process beside the stack for the length of the test. Niced: on an idle machine it takes
    every cycle the stack leaves, and beside other load (CI's other lane) it does not double it."""
    spinner = subprocess.Popen([sys.executable, "-c", "import os; os.nice(19)\nwhile True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def test_no_succeeded_ecs_task_runs_twice_and_a_cleared_step_runs_once_more(tier: Tier, busy_machine):
    for shard, seconds in DURATIONS.items():
        tier.scenario({"env": {"BURST": "yes", "SHARD": shard}}, {"duration": seconds})
    started = time.time()
    tier.unpause(DAG_ID)  # also starts the run of its latest cron time (catchup: false)
    tier.backfill({"dag_id": DAG_ID, "from_date": "2026-05-01T00:00:00Z", "to_date": "2026-05-03T23:59:00Z"})
    tier.trigger(DAG_ID, "burst-manual")  # with "logical_date": null: JOB_DATE is the run's run_after date
    runs = tier.wait(lambda: _runs(tier), 60, "the scheduled run, three backfill runs and the manual one")
    run_ids = [run["dag_run_id"] for run in runs]
    finished = [tier.wait_for_run(DAG_ID, run_id, timeout=600) for run_id in run_ids]

    report = {run_id: _task_instances(tier, run_id) for run_id in run_ids}
    (tier.output / "exactly-once.json").write_text(json.dumps(report, indent=1))
    tis = [ti for run in report.values() for ti in run.values()]
    assert not [ti for ti in tis if len(ti["ecs"]) != 1], "a task instance with a second ECS task, or none"
    assert [run["state"] for run in finished] == ["success"] * len(run_ids)
    assert {ti["state"] for ti in tis} == {"success"}
    adopted = [ti for ti in tis if ti["tries"] > 1]
    assert adopted, "Airflow's race did not happen: nothing was adopted, so nothing was shown"
    # Each ECS task's result reported once (audit record), however many tries it took; no alert sent.
    arns = sorted(arn for ti in tis for arn in ti["ecs"])
    assert sorted(record["task_arn"] for record in tier.audit(DAG_ID, since=started)) == arns
    (manual,) = tier.ecs_tasks(DAG_ID, "each.first", "burst-manual", 0)
    assert environment(manual)["JOB_DATE"] == finished[run_ids.index("burst-manual")]["run_after"][:10]
    assert not [m for m in tier.slack_messages() if DAG_ID in m["text"]]
    # The local environment has task_events: the triggerer learned of the tasks' ends from their events.
    assert tier.aws("GET", "/_local/stats").get("sqs.DeleteMessageBatch", 0) > 0

    # A user clears one succeeded step to run it again: exactly one new ECS task, its try number's.
    run_id, map_index = "burst-manual", 2
    before = tier.ecs_tasks(DAG_ID, "each.first", run_id, map_index)
    last_try = max(t["try_number"] for t in tier.tries(DAG_ID, run_id, "each.first", map_index))
    tier.api.call(
        "POST",
        f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
        {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [["each.first", map_index]],
            "only_failed": False,
            "include_downstream": False,
            "reset_dag_runs": True,
        },
    )
    tier.wait(lambda: len(tier.ecs_tasks(DAG_ID, "each.first", run_id, map_index)) > 1, 120, "a new task")
    assert tier.wait_for_run(DAG_ID, run_id, timeout=300)["state"] == "success"
    after = tier.ecs_tasks(DAG_ID, "each.first", run_id, map_index)
    assert [t["taskArn"] for t in after[:-1]] == [t["taskArn"] for t in before]
    assert len(after) == len(before) + 1
    assert tag(after[-1], "ecsjobs:try") == str(last_try + 1)  # the first try after the clear started it


def _runs(tier: Tier) -> list[dict] | None:
    runs = tier.api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]
    kinds = sorted(run["run_type"] for run in runs)
    return runs if kinds == ["backfill", "backfill", "backfill", "manual", "scheduled"] else None


def _task_instances(tier: Tier, run_id: str) -> dict[str, dict]:
    """Per task instance of the run's steps: its state, Airflow tries and ECS tasks."""
    result = {}
    for ti in tier.task_instances(DAG_ID, run_id):
        if ti["task_id"] not in STEPS:
            continue
        tasks = tier.ecs_tasks(DAG_ID, ti["task_id"], run_id, ti["map_index"])
        key = f"{ti['task_id']}[{ti['map_index']}]"
        result[key] = {"state": ti["state"], "tries": ti["try_number"], "ecs": [t["taskArn"] for t in tasks]}
    return result
