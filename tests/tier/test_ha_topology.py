"""MWAA's topology on this machine (``make run TOPOLOGY=celery``): CeleryExecutor over SQS, 2 schedulers, 2
triggerers, 2 Celery workers, and the guarantees proven on it, counted in the local ECS.

One stack for the module (its own: the tier's LocalExecutor stack is not started yet, this module sorts
first). Batch one: 8 runs of ``tier_ha`` (4 shards x 2 steps: 64 short ECS steps) with a CPU-bound process
beside the stack. Batch two: 5 more (40 steps), some running late and one failing, during which one scheduler,
one triggerer and one Celery worker are killed with SIGKILL while steps wait, and started again once the
other triggerer has taken over the dead one's waits. Every task instance then ends with exactly one
succeeded ECS task (the failing one with one failed task per try), no ECS task is left running, every audit
record is written once, and every alert (failure, step late, run late) is sent once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from datetime import datetime

import psutil
import psycopg2
import pytest
from airflow import __version__ as airflow_version

from local import postgres
from local.settings import CELERY, Ports
from local.stack import Stack
from tests.support import free_port
from tests.tier.harness import FAST_AIRFLOW, TIER, Tier, environment, tier_catalog
from tests.tier.test_tier_exactly_once import busy_machine  # noqa: F401 - a fixture

pytestmark = pytest.mark.tier

OUTPUT = TIER / "output" / f"ha-airflow-{airflow_version}"
DAG_ID, CHANNEL = "tier_ha", "#tier-ha"  # expected_duration 6s (late at 9 s), deadline 25s
SHARDS, STEPS = "abcd", ("each.first", "each.second")
QUICK = {"a": 1, "b": 2, "c": 3, "d": 1.5}  # seconds each shard's tasks run in batch one
RUNS = 8


def _free_base(instances: int) -> int:
    """A port free for every instance of a component (instance i listens on base + 10 * i)."""
    while True:
        base = free_port()
        with contextlib.ExitStack() as held:
            try:
                for i in range(1, instances):
                    s = held.enter_context(socket.socket())
                    s.bind(("127.0.0.1", base + 10 * i))
                return base
            except OSError:
                continue


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir(parents=True)
    catalog = tier_catalog(tmp_path_factory.mktemp("ha") / "config")
    most = max(CELERY.values())
    ports = Ports(
        aws=free_port(), slack=free_port(), api=free_port(), postgres=free_port(), broker=free_port(),
        worker_logs=_free_base(most), trigger_logs=_free_base(most), scheduler_health=_free_base(most),
    )  # fmt: skip
    # As the tier's: faster heartbeats, and a task instance whose worker died is failed after 30 s, not 300.
    # A step the metadata DB's restart left queued with no worker (the scheduler that sent it exited) is sent
    # again after task_queued_timeout: 180 s here, not Airflow's (and MWAA's) 600, which alone took 10 min.
    fast = {
        **FAST_AIRFLOW,
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "180",
    }
    stack = Stack(OUTPUT / "airflow", ports, OUTPUT / "stack-logs", catalog, fast, topology="celery")
    try:
        stack.up(timeout=300)
        tier = Tier(stack, OUTPUT)
        tier.wait(lambda: DAG_ID in _dag_ids(tier), 120, f"the DAG {DAG_ID}")
        tier.unpause(DAG_ID)
        yield tier
    finally:
        stack.down()


def test_the_stack_is_mwaas_shape(ha: Tier):
    assert ha.airflow("config", "get-value", "core", "executor").strip() == "CeleryExecutor"
    assert ha.airflow("config", "get-value", "celery", "broker_url").startswith("sqs://")
    assert sorted(ha.stack.processes) == sorted(
        ["postgres", "local-aws", "local-broker", "local-slack", "api-server", "dag-processor",
         "scheduler-1", "scheduler-2", "triggerer-1", "triggerer-2", "worker-1", "worker-2"]
    )  # fmt: skip
    assert _jobs(ha, "SchedulerJob") == 2 and _jobs(ha, "TriggererJob") == 2


def test_every_step_runs_one_ecs_task_under_load(ha: Tier, busy_machine):  # noqa: F811
    started = time.time()
    for shard, seconds in QUICK.items():
        ha.scenario({"env": {"HA": "yes", "SHARD": shard}}, {"duration": seconds})
    run_ids = [f"ha-1-{i}" for i in range(RUNS)]
    for run_id in run_ids:
        ha.trigger(DAG_ID, run_id)
    finished = [ha.wait_for_run(DAG_ID, run_id, timeout=900) for run_id in run_ids]

    report = _report(ha, run_ids, "batch-1")
    assert [run["state"] for run in finished] == ["success"] * RUNS
    _assert_exactly_once(ha, report, started)
    # Both workers ran steps; the triggerers released each other's events.
    for worker in ("worker-1", "worker-2"):
        assert "execute_workload" in (ha.stack.log_dir / f"{worker}.log").read_text(), worker
    assert ha.aws("GET", "/_local/stats").get("sqs.ChangeMessageVisibilityBatch", 0) > 0
    assert set(_late(ha, run_ids).values()) <= {1}, "a step late on the busy machine alerted once"


def test_killed_scheduler_triggerer_and_worker_lose_nothing_and_repeat_nothing(ha: Tier):
    started = time.time()
    for shard, seconds in {"a": 14, "b": 14, "c": 2, "d": 5}.items():  # a and b run late (past 9 s)
        ha.scenario({"env": {"HA": "yes", "SHARD": shard}}, {"duration": seconds})
    failing = "ha-2-fail"
    ha.scenario({"env": {"RUN_ID": failing, "SHARD": "d"}}, {"duration": 2, "exit_code": 3})
    run_ids = [f"ha-2-{i}" for i in range(4)] + [failing]
    for run_id in run_ids:
        ha.trigger(DAG_ID, run_id)
    ha.wait(lambda: len(_deferred(ha, run_ids)) >= 8, 300, "8 steps waiting")

    # Kill one of each while steps wait (the triggerer holding the most waits: Airflow hands new triggers to
    # whichever triggerer asks first); start them again only once the dead triggerer's waits have moved.
    held = _waits_by_triggerer(ha, run_ids)
    dead = max(held, key=lambda job: len(held[job]))
    killed = ("scheduler-1", _triggerer_running(ha, dead), "worker-1")
    for name in killed:
        ha.stack.kill(name)
    ha.wait(lambda: _moved(ha, held[dead], dead), 180, "the other triggerer taking the dead one's waits")
    for name in killed:
        ha.stack.resume(name)

    finished = {run_id: ha.wait_for_run(DAG_ID, run_id, timeout=900) for run_id in run_ids}
    report = _report(ha, run_ids, "batch-2")
    assert {r: run["state"] for r, run in finished.items()} == {
        **{r: "success" for r in run_ids},
        failing: "failed",
    }
    failed = {key: ti for key, ti in report.items() if ti["state"] != "success"}
    assert failed.keys() == {f"{failing}/each.first[3]", f"{failing}/each.second[3]"}, failed
    assert failed[f"{failing}/each.second[3]"]["state"] == "upstream_failed"
    _assert_exactly_once(ha, report, started, failed=failed)
    alerts = _alerts(ha, run_ids)
    assert alerts["failure"] == {failing: 1}, "the failed step alerted once"
    late = _late(ha, run_ids)
    assert set(late.values()) == {1}, "each late ECS task alerted once, across the triggerer kill"
    # a and b run 14 s: late (at 9 s) whatever the machine; a busy one can make a 2 s or 5 s step late too.
    long = {ti["ecs"][-1] for key, ti in report.items() if key.split("[")[1][0] in "01"}
    assert long <= late.keys(), "a 14 s step did not alert"
    # (start_date is the last try's: only steps of one try tell how long their task ran after it)
    ran = {ti["ecs"][-1]: ti["stopped"][-1] - ti["started"] for ti in report.values() if ti["tries"] == 1}
    assert [arn for arn in late if ran.get(arn, 9) < 9] == [], "an alert for a step that ended within 9 s"
    assert alerts["run_late"] == dict.fromkeys(run_ids, 1), "every run took longer than 25 s: one each"


# -- what the tests count ----------------------------------------------------------------------------------


def _assert_exactly_once(ha: Tier, report: dict, started: float, failed: dict | None = None) -> None:
    failed = failed or {}
    for key, ti in report.items():
        if key in failed and ti["state"] == "upstream_failed":
            assert ti["ecs"] == [], (key, ti)
        elif key in failed:  # a try whose worker died adopts its task's failure instead of starting another
            assert 1 <= len(ti["ecs"]) <= ti["tries"] and "SUCCEEDED" not in ti["results"], (key, ti)
        else:
            assert ti["state"] == "success" and ti["results"] == ["SUCCEEDED"], (key, ti)
    mine = [t for t in ha.aws("GET", "/_local/tasks") if environment(t).get("HA") == "yes"]
    assert not [t["taskArn"] for t in mine if t["lastStatus"] != "STOPPED"], "an ECS task left running"
    arns = sorted(arn for ti in report.values() for arn in ti["ecs"])
    audited = sorted(record["task_arn"] for record in ha.audit(DAG_ID, since=started))
    assert audited == arns, "every ECS task's result audited exactly once"


def _report(ha: Tier, run_ids: list[str], name: str) -> dict[str, dict]:
    """Per task instance of the runs' steps: state, tries, ECS tasks and their results, worker hostnames."""
    report = {}
    for run_id in run_ids:
        for ti in ha.task_instances(DAG_ID, run_id):
            if ti["task_id"] not in STEPS:
                continue
            tasks = ha.ecs_tasks(DAG_ID, ti["task_id"], run_id, ti["map_index"])
            report[f"{run_id}/{ti['task_id']}[{ti['map_index']}]"] = {
                "state": ti["state"],
                "tries": ti["try_number"],
                "started": datetime.fromisoformat(ti["start_date"]).timestamp(),
                "ecs": [t["taskArn"] for t in tasks],
                "stopped": [t.get("stoppedAt") for t in tasks],
                "results": [
                    "SUCCEEDED" if _succeeded(t) else f"exit {t['scenario']['exit_code']}" for t in tasks
                ],
            }
    (ha.output / f"{name}.json").write_text(json.dumps(report, indent=1))
    return report


def _succeeded(task: dict) -> bool:
    """Stopped with exit code 0 of its own (the local ECS's scenario for it, resolved at RunTask)."""
    scenario = task["scenario"]
    return task["lastStatus"] == "STOPPED" and (scenario["exit_code"], scenario["stop_code"]) == (
        0,
        "EssentialContainerExited",
    )


def _alerts(ha: Tier, run_ids: list[str]) -> dict[str, dict[str, int]]:
    """Failure alerts per task instance and run-late alerts per run, as the local Slack received them."""
    counts: dict[str, dict[str, int]] = {"failure": {}, "run_late": {}}
    for message in ha.slack_messages():
        if message["channel"] != CHANNEL:
            continue
        text = json.dumps(message)
        run_id = next((r for r in sorted(run_ids, key=len, reverse=True) if r in text), None)
        if run_id is None:
            continue
        if message["text"].startswith(":turtle: Run missed its deadline"):
            counts["run_late"][run_id] = counts["run_late"].get(run_id, 0) + 1
        elif message["text"].startswith(":red_circle: Step failed"):
            counts["failure"][run_id] = counts["failure"].get(run_id, 0) + 1
    return counts


def _late(ha: Tier, run_ids: list[str]) -> dict[str, int]:
    """ "Step running late" alerts per ECS task ARN (each names its task)."""
    counts: dict[str, int] = {}
    for message in ha.slack_messages():
        if message["channel"] == CHANNEL and message["text"].startswith(":turtle: Step running late"):
            text = json.dumps(message)
            if any(r in text for r in run_ids):
                arn = re.search(r"task (arn:\S+?)\)", message["text"]).group(1)
                counts[arn] = counts.get(arn, 0) + 1
    return counts


def _deferred(ha: Tier, run_ids: list[str]) -> list[dict]:
    return [
        ti
        for run_id in run_ids
        for ti in ha.task_instances(DAG_ID, run_id)
        if ti["state"] == "deferred" and ti.get("triggerer_job")
    ]


def _waits_by_triggerer(ha: Tier, run_ids: list[str]) -> dict[int, list[tuple[str, str, int]]]:
    """The deferred task instances by the id of the triggerer job holding their wait."""
    held: dict[int, list[tuple[str, str, int]]] = {}
    for ti in _deferred(ha, run_ids):
        held.setdefault(ti["triggerer_job"]["id"], []).append(
            (ti["dag_run_id"], ti["task_id"], ti["map_index"])
        )
    return held


def _db(ha: Tier, query: str, *args) -> list[tuple]:
    with (
        contextlib.closing(psycopg2.connect(postgres.dsn(ha.stack.ports.postgres))) as db,
        db.cursor() as cur,
    ):
        cur.execute(query, args)
        return cur.fetchall()


def _jobs(ha: Tier, job_type: str) -> int:
    rows = _db(ha, "SELECT count(*) FROM job WHERE job_type = %s AND state = 'running'", job_type)
    return rows[0][0]


def _triggerer_running(ha: Tier, job_id: int) -> str:
    """The triggerer process running TriggererJob ``job_id``: it holds its triggers' log files open, named
    ``<attempt>.log.trigger.<job id>.log``."""
    for name in [n for n in ha.stack.processes if n.startswith("triggerer-")]:
        main = psutil.Process(ha.stack.processes[name].pid)
        for process in [main, *main.children(recursive=True)]:
            if any(f.path.endswith(f".trigger.{job_id}.log") for f in process.open_files()):
                return name
    raise AssertionError(f"no triggerer has the logs of TriggererJob {job_id} open")


def _moved(ha: Tier, waits: list[tuple[str, str, int]], dead: int) -> bool:
    """True once every wait the dead triggerer held is held by another one or has ended."""
    for run_id, task_id, map_index in waits:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}"
        ti = ha.api.call("GET", path)
        if ti["state"] == "deferred" and (ti.get("triggerer_job") or {}).get("id") in (None, dead):
            return False
    return True


def _dag_ids(tier: Tier) -> set[str]:
    return {d["dag_id"] for d in tier.api.call("GET", "/api/v2/dags?limit=100")["dags"]}


# -- faults of the distributed parts ------------------------------------------------------------------------


def test_the_broker_unreachable_for_30_s_holds_the_steps_back_and_repeats_none(ha: Tier):
    """The broker's process stopped (SIGSTOP: connections hang, as when its network is cut, and nothing is
    lost) while runs are triggered: no step reaches a worker meanwhile; once it answers again every step runs,
    each with one ECS task."""
    started = time.time()
    run_ids = ["ha-3-0", "ha-3-1"]
    for run_id in run_ids:
        ha.scenario({"env": {"RUN_ID": run_id}}, {"duration": 2})
    broker = ha.stack.processes["local-broker"]
    os.killpg(broker.pid, signal.SIGSTOP)
    try:
        for run_id in run_ids:
            ha.trigger(DAG_ID, run_id)
        time.sleep(30)
        assert not _ecs_tasks_of(ha, run_ids), "a step ran while the broker was unreachable"
    finally:
        os.killpg(broker.pid, signal.SIGCONT)
    finished = [ha.wait_for_run(DAG_ID, run_id, timeout=600) for run_id in run_ids]
    assert [run["state"] for run in finished] == ["success"] * len(run_ids)
    _assert_exactly_once(ha, _report(ha, run_ids, "broker-outage"), started)


def test_the_metadata_db_restarted_mid_run_loses_no_step(ha: Tier):
    started = time.time()
    run_ids = ["ha-4-0", "ha-4-1"]
    for run_id in run_ids:
        ha.scenario({"env": {"RUN_ID": run_id}}, {"duration": 8})
        ha.trigger(DAG_ID, run_id)
    ha.wait(lambda: len(_deferred(ha, run_ids)) >= 4, 300, "4 steps waiting")
    ha.stack.kill("postgres", signal.SIGINT)  # PostgreSQL's fast shutdown: every client disconnected
    time.sleep(5)
    ha.stack.resume("postgres")
    # Airflow's components exit when the DB goes away (some at once, some at their next write): started
    # again as docker compose's `restart: always` and MWAA do.
    finished = [ha.wait_for_run(DAG_ID, run_id, 600, restart_exited=True) for run_id in run_ids]
    ha.wait(lambda: ha.stack.healthy(), 180, "every component back", restart_exited=True)
    assert [run["state"] for run in finished] == ["success"] * len(run_ids)
    _assert_exactly_once(ha, _report(ha, run_ids, "db-restart"), started)
    (ha.output / "db-restart-restarts.json").write_text(json.dumps(sorted(ha.stack.restarts)))


def test_a_worker_lost_with_steps_queued_on_it_has_them_run_by_the_other_once(ha: Tier):
    """SIGKILL to a worker that has just taken steps from the broker: those it had not started stay with
    the broker, invisible, until its visibility timeout (``BROKER_VISIBILITY_TIMEOUT``) gives them to the
    other worker; those it had started are retried and adopt their ECS task. Each runs one ECS task."""
    started = time.time()
    run_ids = [f"ha-5-{i}" for i in range(4)]
    log = ha.stack.log_dir / "worker-1.log"
    taken_before = log.read_text().count("execute_workload")
    for run_id in run_ids:
        ha.scenario({"env": {"RUN_ID": run_id}}, {"duration": 2})
        ha.trigger(DAG_ID, run_id)
    ha.wait(lambda: log.read_text().count("execute_workload") > taken_before, 300, "worker-1 taking a step")
    ha.stack.kill("worker-1")
    time.sleep(15)  # worker-2 has run everything it could take by now
    stranded = [
        ti for run_id in run_ids for ti in ha.task_instances(DAG_ID, run_id) if ti["state"] == "queued"
    ]
    ha.stack.resume("worker-1")
    finished = [ha.wait_for_run(DAG_ID, run_id, timeout=600) for run_id in run_ids]
    assert [run["state"] for run in finished] == ["success"] * len(run_ids)
    _assert_exactly_once(ha, _report(ha, run_ids, "worker-lost"), started)
    assert stranded, "worker-1 died holding no queued step: nothing was shown"


def _ecs_tasks_of(ha: Tier, run_ids: list[str]) -> list[dict]:
    return [t for t in ha.aws("GET", "/_local/tasks") if environment(t).get("RUN_ID") in run_ids]
