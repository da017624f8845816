"""The batched ECS wait (``ecsjobs.waiting.triggers``, ``ecsjobs.waiting.poller``) over HTTP against the local
AWS.

Triggers run as the triggerer runs them: their ``run()`` generators side by side in one event loop, or, as
``dag.test()`` does, each in its own ``asyncio.run``. Tasks are started with plain boto3 RunTask; the
scenario of each group of tasks (duration, exit code) is chosen by an environment variable.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.providers.amazon.aws.hooks.ecs import EcsHook
from airflow.triggers.base import BaseTrigger

from ecsjobs.waiting import poller
from ecsjobs.waiting.triggers import EcsTaskWaitTrigger
from tests.support import LocalServer
from tests.waits import (
    CLUSTER,
    CONTAINER,
    INTERVAL,
    LOG_GROUP,
    first_event,
    rebuilt,
    start_tasks,
    wait_all,
    wait_trigger,
)

KILL_HOOK = hasattr(BaseTrigger, "on_kill")  # Airflow 3.3+


@pytest.fixture
def conns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ECS client opened through ``EcsHook.get_async_conn`` (observed, not replaced)."""
    opened: list[str] = []
    original = EcsHook.get_async_conn

    async def get_async_conn(self: EcsHook) -> Any:
        opened.append(self.aws_conn_id)
        return await original(self)

    monkeypatch.setattr(EcsHook, "get_async_conn", get_async_conn)
    return opened


def _calls(aws: LocalServer, since: float) -> list[dict[str, Any]]:
    return aws.get(f"/_local/calls?action=DescribeTasks&since={since}")


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def _until(condition: Callable[[], object], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_250_waits_share_one_client_and_describe_at_most_100_tasks_per_call(aws, ecs, conns):
    exit_codes = [0, 1, 2, 3, 4]
    expected = {}
    for code in exit_codes:  # durations 1..5 s: the tasks stop over several polling rounds
        for arn in start_tasks(aws, ecs, 50, duration=1.0 + code, exit_code=code):
            expected[arn] = code
    since = time.time()

    events = wait_all([wait_trigger(arn) for arn in expected])
    elapsed = time.time() - since

    assert [e["task_arn"] for e in events] == list(expected)
    for event in events:
        task = event["task"]
        assert event["status"] == "stopped"
        assert task["taskArn"] == event["task_arn"] and task["lastStatus"] == "STOPPED"
        assert task["containers"][0]["exitCode"] == expected[event["task_arn"]]
        assert event["detected_at"] >= _epoch(task["stoppedAt"])
    json.dumps(events)

    calls = _calls(aws, since)
    assert all(call["tasks"] <= poller.MAX_ARNS_PER_CALL for call in calls)
    rounds: list[list[dict[str, Any]]] = []
    # A round's calls go out together, rounds an interval apart. The server logs a call when it has
    # answered it, so the log is sorted by arrival here.
    for call in sorted(calls, key=lambda c: c["t"]):
        if rounds and call["t"] - rounds[-1][0]["t"] < INTERVAL / 2:
            rounds[-1].append(call)
        else:
            rounds.append([call])
    timeline = [[(round(c["t"] - since, 2), c["tasks"]) for c in r] for r in rounds]
    assert max(len(r) for r in rounds) <= math.ceil(250 / 100), timeline
    # Each wait ends at the first round that could see its task stopped: between the stop and the detection,
    # at most the round in flight at the stop and the one after it were answered, however slow the machine.
    answered = [r[0]["t"] for r in rounds]
    for event in events:
        stopped, detected = _epoch(event["task"]["stoppedAt"]), event["detected_at"]
        assert len([t for t in answered if stopped < t <= detected]) <= 2, (event["task_arn"], timeline)
    assert len(calls) <= math.ceil(250 / 100) * (elapsed / INTERVAL + 1)
    assert conns == ["aws_local"], "one shared client for all the waits"
    assert poller._pollers == {}, "the last wait out closes the poller"


def test_throttling_and_server_errors_slow_the_waits_but_never_fail_them(aws, ecs):
    arns = start_tasks(aws, ecs, 20, duration=1.5)
    aws.post("/_local/faults", {"action": "DescribeTasks", "kind": "throttle", "rate": 0.5})
    aws.post("/_local/faults", {"action": "DescribeTasks", "kind": "http_500", "rate": 0.5})
    since = time.time()

    events = wait_all([wait_trigger(arn) for arn in arns])

    assert [(e["task_arn"], e["status"]) for e in events] == [(arn, "stopped") for arn in arns]
    statuses = {call["status"] for call in _calls(aws, since)}
    assert {200, 400, 500} <= statuses, statuses


def test_the_poller_backs_off_while_throttled_and_returns_to_its_interval(aws, ecs):
    (arn,) = start_tasks(aws, ecs, 1, duration=8)
    # No retries inside botocore: every throttled call reaches the poller.
    trigger = wait_trigger(arn, botocore_config={"retries": {"mode": "standard", "total_max_attempts": 1}})
    aws.post("/_local/faults", {"action": "DescribeTasks", "kind": "throttle", "rate": 1, "times": 2})
    since = time.time()

    (event,) = wait_all([trigger])

    assert event["status"] == "stopped"
    calls = _calls(aws, since)
    assert [c["status"] for c in calls[:3]] == [400, 400, 200]
    gaps = [b["t"] - a["t"] for a, b in zip(calls, calls[1:], strict=False)]
    assert INTERVAL <= gaps[0] <= 2 * INTERVAL + 0.5  # first backoff: 1-2 intervals
    assert gaps[1] >= 2 * INTERVAL  # second: 2-4 intervals
    assert all(gap < 1.5 * INTERVAL for gap in gaps[2:])  # back to the interval after a success


def test_a_burst_of_server_errors_delays_a_wait_by_at_most_the_interval_plus_10_s(aws, ecs):
    """Each DescribeTasks is one bounded attempt, whatever config the waits carry (the operator's is
    botocore's adaptive mode with 10 attempts, which retried one call for about a minute), and a failed round
    is followed by the next one at the interval: once the burst ends, every wait learns of its task's end."""
    from ecsjobs.aws import BOTOCORE_CONFIG

    arns = start_tasks(aws, ecs, 5, duration=1.0)
    burst = aws.post("/_local/faults", {"action": "DescribeTasks", "kind": "http_500"})
    burst_seconds = 8.0
    since = time.time()

    async def main() -> list[dict[str, Any]]:
        waits = [
            asyncio.ensure_future(first_event(wait_trigger(arn, botocore_config=BOTOCORE_CONFIG)))
            for arn in arns
        ]
        await asyncio.sleep(burst_seconds)
        aws.control("DELETE", f"/_local/faults/{burst['id']}")
        ended.append(time.time())
        return await asyncio.wait_for(asyncio.gather(*waits), 60)

    ended: list[float] = []
    events = asyncio.run(main())

    assert [e["status"] for e in events] == ["stopped"] * len(arns)
    assert all(_epoch(e["task"]["stoppedAt"]) < ended[0] for e in events)  # they stopped during the burst
    late = max(e["detected_at"] for e in events) - ended[0]
    assert late <= INTERVAL + 10, f"detected {late:.1f} s after the burst ended"
    calls = _calls(aws, since)
    assert {c["status"] for c in calls} == {500, 200}
    gaps = [b["t"] - a["t"] for a, b in zip(calls, calls[1:], strict=False)]
    assert max(gaps) <= INTERVAL + 1, f"a call retried inside botocore, or a round backed off: {gaps}"


def test_not_before_holds_the_event_back_until_then(aws, ecs):
    """``resume_delay``: a task that stops within seconds of the step deferring resumes it no sooner."""
    (arn,) = start_tasks(aws, ecs, 1, duration=0.5)
    not_before = time.time() + 4

    (event,) = wait_all([wait_trigger(arn, not_before=not_before)])

    assert event["status"] == "stopped"
    assert event["detected_at"] < not_before <= time.time()  # seen at once, reported when due


def test_a_task_ecs_does_not_know_is_missing_after_a_grace_period(aws, ecs, monkeypatch):
    monkeypatch.setattr(poller, "MISSING_GRACE", 2 * INTERVAL)
    (known,) = start_tasks(aws, ecs, 1, duration=1)
    unknown = known.rsplit("/", 1)[0] + "/" + uuid.uuid4().hex
    since = time.time()

    events = wait_all([wait_trigger(unknown), wait_trigger(known)])

    assert (events[0]["status"], events[0]["task"]) == ("missing", None)
    assert events[0]["detected_at"] - since >= 2 * INTERVAL
    assert len(_calls(aws, since)) >= 3  # asked again before giving up
    assert events[1]["status"] == "stopped"


def test_a_task_ecs_does_not_describe_yet_is_still_waited_for(aws, ecs):
    """Right after RunTask, DescribeTasks may answer MISSING (ECS is eventually consistent)."""
    aws.post("/_local/faults", {"service": "ecs", "action": "DescribeTasks", "kind": "missing", "times": 2})
    (arn,) = start_tasks(aws, ecs, 1, duration=2)

    (event,) = wait_all([wait_trigger(arn)])

    assert event["status"] == "stopped" and event["task"]["taskArn"] == arn


def test_a_cancelled_wait_leaves_the_poller_and_the_others_keep_waiting(aws, ecs):
    cancelled, kept = start_tasks(aws, ecs, 2, duration=3)
    since = time.time()

    async def main() -> dict[str, Any]:
        doomed = asyncio.create_task(first_event(wait_trigger(cancelled)))
        waiting = asyncio.create_task(first_event(wait_trigger(kept)))
        await _until(lambda: any(c["tasks"] == 2 for c in _calls(aws, since)), "a round with both tasks")
        doomed.cancel()  # as the triggerer does when a task is cleared or moved to another triggerer
        cancelled_at = time.time()
        await _until(lambda: _calls(aws, cancelled_at), "the next round")
        assert [c["tasks"] for c in _calls(aws, cancelled_at)] == [1]
        return await waiting

    event = asyncio.run(main())

    assert (event["task_arn"], event["status"]) == (kept, "stopped")
    assert poller._pollers == {}


def test_at_the_deadline_the_trigger_stops_the_task_and_reports_timed_out(aws, ecs):
    (arn,) = start_tasks(aws, ecs, 1, duration=30)
    reason = f"deadline of test {uuid.uuid4().hex[:8]}"
    trigger = wait_trigger(arn, deadline=time.time() + 2, stop_reason=reason)

    (event,) = wait_all([trigger], timeout=15)

    assert event["status"] == "timed_out"
    assert event["task"]["stopCode"] == "UserInitiated"
    assert event["task"]["stoppedReason"] == reason
    (task,) = [t for t in aws.get("/_local/tasks") if t["taskArn"] == arn]
    assert task["lastStatus"] == "STOPPED"
    described = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
    assert (described["stopCode"], described["stoppedReason"]) == ("UserInitiated", reason)


def test_a_task_that_ends_before_its_deadline_is_just_stopped(aws, ecs):
    (arn,) = start_tasks(aws, ecs, 1, duration=0.5)

    (event,) = wait_all(
        [wait_trigger(arn, deadline=datetime.fromtimestamp(time.time() + 20, UTC).isoformat())]
    )

    assert event["status"] == "stopped"
    assert event["task"]["stopCode"] == "EssentialContainerExited"


def _run_in_triggerer(trigger: EcsTaskWaitTrigger, until_watching: Callable[[], object]) -> Awaitable[None]:
    """Run the trigger in the triggerer's ``TriggerRunner`` and cancel it as a user's action does."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    async def main() -> None:
        runner = TriggerRunner()
        runner.triggers[1] = {"name": "wait", "events": 0, "is_watcher": False}
        runner.triggers[1]["task"] = task = asyncio.create_task(runner.run_trigger(1, trigger))
        await _until(until_watching, "the trigger's first DescribeTasks")
        runner.to_cancel.append(1)  # what the triggerer does when the task instance is marked failed
        await runner.cancel_triggers()
        await asyncio.wait([task])
        assert task.cancelled()

    return main()


@pytest.mark.skipif(
    not KILL_HOOK, reason="Airflow 3.2 has no BaseTrigger.on_kill; its triggerer never calls one"
)
def test_a_user_killing_the_deferred_task_stops_the_ecs_task(aws, ecs):
    (arn,) = start_tasks(aws, ecs, 1, duration=30)
    reason = f"killed in test {uuid.uuid4().hex[:8]}"
    since = time.time()

    asyncio.run(_run_in_triggerer(wait_trigger(arn, kill_reason=reason), lambda: _calls(aws, since)))

    described = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
    assert (described["desiredStatus"], described["stopCode"]) == ("STOPPED", "UserInitiated")
    assert described["stoppedReason"] == reason
    assert poller._pollers == {}


@pytest.mark.skipif(KILL_HOOK, reason="Airflow 3.3+ calls on_kill: see the test above")
def test_on_airflow_3_2_a_user_kill_leaves_the_ecs_task_running(aws, ecs):
    (arn,) = start_tasks(aws, ecs, 1, duration=30)
    since = time.time()

    asyncio.run(_run_in_triggerer(wait_trigger(arn), lambda: _calls(aws, since)))

    assert ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]["desiredStatus"] == "RUNNING"
    assert aws.get(f"/_local/calls?action=StopTask&since={since}") == []
    assert poller._pollers == {}


def test_container_log_lines_reach_the_trigger_log(aws, ecs, capsys):
    summary = '{"rows":42}'
    lines = ["reading input", "writing output"]
    (arn,) = start_tasks(aws, ecs, 1, duration=2, log_lines=lines, summary=json.loads(summary))
    stream = f"ecs/{CONTAINER}/{arn.rsplit('/', 1)[-1]}"

    (event,) = wait_all([wait_trigger(arn, log_group=LOG_GROUP, log_stream=stream)])

    assert event["status"] == "stopped"
    out = capsys.readouterr().out  # Airflow's structlog logging writes the trigger's log to stdout
    trigger_log = [line for line in out.splitlines() if "EcsTaskWaitTrigger" in line]
    forwarded = [line for line in trigger_log if any(f"] {text} " in line for text in [*lines, summary])]
    assert len(forwarded) == 3, trigger_log
    for line, text in zip(forwarded, [*lines, summary], strict=True):
        assert f"] {text} " in line  # "[<event time>] <message>", as TaskDoneTrigger logs them


def test_each_trigger_in_its_own_event_loop_as_dag_test_runs_them(aws, ecs, conns):
    first, second = start_tasks(aws, ecs, 2, duration=0.5)

    events = [asyncio.run(first_event(rebuilt(wait_trigger(arn)))) for arn in (first, second)]

    assert [(e["task_arn"], e["status"]) for e in events] == [(first, "stopped"), (second, "stopped")]
    assert len(conns) == 2, "a poller and its client belong to one event loop"
    assert poller._pollers == {}


def test_after_a_triggerer_restart_the_rebuilt_trigger_waits_with_a_fresh_poller(aws, ecs, conns):
    (arn,) = start_tasks(aws, ecs, 1, duration=2)
    trigger = wait_trigger(arn)
    since = time.time()

    async def until_shutdown() -> None:
        waiting = asyncio.create_task(first_event(trigger))
        await _until(lambda: _calls(aws, since), "the first DescribeTasks")
        waiting.cancel()  # a triggerer shutting down cancels its triggers
        await asyncio.wait([waiting])

    asyncio.run(until_shutdown())
    assert poller._pollers == {}
    event = asyncio.run(first_event(rebuilt(trigger)))

    assert (event["task_arn"], event["status"]) == (arn, "stopped")
    assert len(conns) == 2
