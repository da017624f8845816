"""Event-driven completion (``ecsjobs.waiting.state_events``, the poller's event mode) over HTTP to the local
AWS.

The local AWS's ECS simulator puts every task state change on the local EventBridge, whose rule (created by
``local.seed`` from the shipped ``local`` environment, as ``sync-monitoring`` creates it) sends STOPPED
events to the SQS queue the waits read. Event faults (``/_local/event-faults``) drop, duplicate, delay and
reorder those events; API faults throttle SQS; the queue is deleted under a running wait. In every case each
wait ends once, with its own task, and polling takes over only while events cannot be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from aiobotocore.client import AioBaseClient

from ecsjobs.catalog.environment import TaskEvents
from ecsjobs.catalog.loading import load_catalog
from ecsjobs.deploy import event_route
from ecsjobs.waiting import poller, state_events
from ecsjobs.waiting.state_events import rule_pattern
from local.settings import REPO
from tests.support import wait_until
from tests.waits import CLUSTER, FAMILY, NETWORK, QUICK, wait_all, wait_trigger

SEEDED_QUEUE = "batch-jobs-task-events"
QUEUE = SEEDED_QUEUE  # each test gets a queue and rule of its own (the `queue` fixture)
SLOW_POLL = 30.0  # longer than any wait here: only an event (or a reconciliation) can end it
STARTED: list[str] = []  # the tasks this test started (the `queue` fixture gives each test its own list)
SINCE = 0.0  # when this test's queue began to receive events


@pytest.fixture
def sqs(aws) -> Any:
    return aws.client("sqs")


@pytest.fixture
def events(aws) -> Any:
    return aws.client("events")


@pytest.fixture(autouse=True)
def queue(aws, ecs, sqs, events, monkeypatch) -> Iterator[str]:
    """A queue and rule of this test's own, made as ``sync-monitoring`` makes them: the waits of one test
    never meet the messages an earlier test's listener left invisible."""
    name = f"task-events-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(sys.modules[__name__], "QUEUE", name)
    monkeypatch.setattr(sys.modules[__name__], "STARTED", [])
    _restore_route(ecs, sqs, events)
    monkeypatch.setattr(sys.modules[__name__], "SINCE", time.time())
    yield name
    events.remove_targets(Rule=name, Ids=[event_route.TARGET_ID])
    events.delete_rule(Name=name)
    with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):  # a test may have deleted it
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])


def _environment(queue: str) -> Any:
    env = load_catalog(REPO / "config", "local").environment
    return env.model_copy(update={"task_events": TaskEvents(queue=queue)})


def _start(aws, ecs, count: int, **scenario: Any) -> tuple[str, list[str]]:
    """``count`` tasks following ``scenario``, started with one ``startedBy`` that faults can match on
    (tasks of earlier tests may still be running and sending events)."""
    group = uuid.uuid4().hex[:16]
    aws.post("/_local/scenarios", {"match": {"started_by": group}, "scenario": {**QUICK, **scenario}})
    response = ecs.run_task(
        cluster=CLUSTER, taskDefinition=FAMILY, networkConfiguration=NETWORK, startedBy=group, count=count
    )
    assert response["failures"] == [], response["failures"]
    arns = [task["taskArn"] for task in response["tasks"]]
    STARTED.extend(arns)
    return group, arns


def _stopped_events(aws, arns: list[str]) -> list[dict[str, Any]]:
    """The STOPPED events the local ECS sent to EventBridge for these tasks, in order."""
    return [e for e in aws.get("/_local/events") if e["lastStatus"] == "STOPPED" and e["taskArn"] in arns]


def _events_trigger(arn: str, reconcile: float = 60.0, poll: float = SLOW_POLL, **kwargs: Any) -> Any:
    trigger = wait_trigger(arn, events_queue=QUEUE, reconcile_interval=reconcile, **kwargs)
    trigger.poll_interval = poll
    return trigger


def _describes(aws, since: float) -> int:
    return len(aws.get(f"/_local/calls?action=DescribeTasks&service=ecs&since={since}"))


def _settled_by_events(events: list[dict[str, Any]], arns: list[str]) -> None:
    assert [e["task_arn"] for e in events] == arns
    for event in events:
        assert event["status"] == "stopped"
        assert event["task"]["taskArn"] == event["task_arn"] and event["task"]["lastStatus"] == "STOPPED"


def _queue_depth(sqs) -> int:
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _foreign_stopped(aws) -> int:
    """STOPPED events of tasks this test did not start (earlier tests' tasks ending now) that reached its
    queue: nobody here waits for them, so they stay, as they would for another triggerer's wait."""
    sent = aws.get("/_local/events")
    return sum(e["lastStatus"] == "STOPPED" and e["t"] >= SINCE and e["taskArn"] not in STARTED for e in sent)


def _assert_only_foreign_events_left(aws, sqs, why: str) -> None:
    before = _foreign_stopped(aws)
    depth = _queue_depth(sqs)
    after = _foreign_stopped(aws)  # one may have come meanwhile
    assert before <= depth <= after, f"{why}: {depth} left, {before} of other tests' tasks"


def test_stopped_events_end_the_waits_long_before_a_poll_would(aws, ecs, sqs):
    _, arns = _start(aws, ecs, 10, duration=4, exit_code=3)
    since = time.time()

    events = wait_all([_events_trigger(arn) for arn in arns], timeout=SLOW_POLL)

    _settled_by_events(events, arns)
    assert all(e["task"]["containers"][0]["exitCode"] == 3 for e in events), "judged from the event's detail"
    assert time.time() - since < SLOW_POLL / 2
    (first_round,) = aws.get(f"/_local/calls?action=DescribeTasks&service=ecs&since={since}")
    assert all(e["detected_at"] > first_round["t"] for e in events), "no DescribeTasks round saw them end"
    _assert_only_foreign_events_left(aws, sqs, "handled messages are deleted")


def test_lost_events_end_the_wait_at_the_next_reconciliation(aws, ecs, sqs):
    group, (lost, kept) = _start(aws, ecs, 2, duration=1.0)
    aws.post("/_local/event-faults", {"kind": "drop", "match": {"started_by": group}, "times": 1})
    since = time.time()

    events = wait_all([_events_trigger(arn, reconcile=3) for arn in (lost, kept)], timeout=SLOW_POLL)

    _settled_by_events(events, [lost, kept])
    assert _describes(aws, since) >= 2, "the dropped event's wait was ended by a reconciliation round"
    assert len(_stopped_events(aws, [lost, kept])) == 1, "one STOPPED event never reached EventBridge"


def test_a_reconciliation_describes_only_the_tasks_ecs_lists_as_stopped(aws, ecs, sqs):
    """Its cost does not grow with the number of waits: one ListTasks, then DescribeTasks of the watched
    tasks among the stopped ones (here the one whose event was lost), not of the 150 still running."""
    _, running = _start(aws, ecs, 150, duration=120)
    group, (lost,) = _start(aws, ecs, 1, duration=6)  # still running when the waits are first described
    aws.post("/_local/event-faults", {"kind": "drop", "match": {"started_by": group}})
    since = time.time()

    async def main() -> dict[str, Any]:
        others = [asyncio.ensure_future(anext(_events_trigger(arn, reconcile=3).run())) for arn in running]
        try:
            return (await anext(_events_trigger(lost, reconcile=3).run())).payload
        finally:
            for wait in others:
                wait.cancel()
            await asyncio.gather(*others, return_exceptions=True)

    event = asyncio.run(asyncio.wait_for(main(), SLOW_POLL))

    _settled_by_events([event], [lost])
    described = [call["tasks"] for call in aws.get(f"/_local/calls?action=DescribeTasks&since={since}")]
    assert sum(described) <= 151 + 3, f"each wait described once, then the stopped task: {described}"
    assert described[-1] == 1, f"the round that found the lost event's task described it alone: {described}"
    assert aws.get(f"/_local/calls?action=ListTasks&service=ecs&since={since}")
    for arn in running:  # and their STOPPED events go to this test's queue, not to a later test's
        ecs.stop_task(cluster=CLUSTER, task=arn)
    wait_until(lambda: len(_stopped_events(aws, running)) == len(running), 10, "the STOPPED events")


def test_duplicate_delayed_and_reordered_events_end_each_wait_once(aws, ecs, sqs):
    group, arns = _start(aws, ecs, 6, duration=1.0)
    for fault in (
        {"kind": "duplicate", "seconds": 1.5},
        {"kind": "delay", "seconds": 2},
        {"kind": "reorder"},
    ):
        aws.post("/_local/event-faults", {**fault, "match": {"started_by": group}, "times": 2})
    since = time.time()

    async def main() -> list[dict[str, Any]]:
        ended = await asyncio.gather(*(anext(_events_trigger(arn).run()) for arn in arns))
        before_drain = _describes(aws, since)
        await asyncio.sleep(2)  # the late duplicates arrive after their waits ended
        await _drain_with_a_new_wait(aws, ecs)
        assert before_drain == 1, "the events alone ended every wait"
        return [event.payload for event in ended]

    events = asyncio.run(asyncio.wait_for(main(), SLOW_POLL))

    _settled_by_events(events, arns)
    sent = _stopped_events(aws, arns)
    assert len(sent) == 8 and {e["taskArn"] for e in sent} == set(arns), "two were sent twice"
    assert sent[-1]["t"] - sent[0]["t"] >= 1.5, "some came late"
    _assert_only_foreign_events_left(aws, sqs, "duplicates of ended waits are recognised and deleted")


async def _drain_with_a_new_wait(aws, ecs) -> None:
    """One more wait in the same event loop, as a triggerer's next trigger: its listener reads what is left
    in the queue. (A new loop would not do: the long poll of the loop that ended is abandoned, and SQS hides
    the messages it still takes for the visibility timeout.)"""
    _, (arn,) = _start(aws, ecs, 1, duration=0.5)
    event = await anext(_events_trigger(arn).run())
    assert event.payload["task_arn"] == arn


def test_a_duplicate_or_stale_event_never_ends_a_later_wait(aws, ecs, sqs):
    """Versions: an event older than what the poller saw for a task is dropped; a RUNNING event of a watched
    task does not end its wait."""
    _, (arn,) = _start(aws, ecs, 1, duration=3)
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    running = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
    detail = {"taskArn": arn, "lastStatus": "RUNNING", "version": 3, "containers": running["containers"]}
    body = {"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": detail}
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body, default=str))
    sqs.send_message(QueueUrl=url, MessageBody="not an event")

    async def main() -> dict[str, Any]:
        event = (await anext(_events_trigger(arn).run())).payload
        stale = {**detail, "lastStatus": "STOPPED", "version": 6}
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({**body, "detail": stale}, default=str))
        await _drain_with_a_new_wait(aws, ecs)
        return event

    event = asyncio.run(asyncio.wait_for(main(), SLOW_POLL))

    assert event["task"]["lastStatus"] == "STOPPED" and event["task"]["version"] == 7
    _assert_only_foreign_events_left(
        aws, sqs, "the stale STOPPED event, the RUNNING one and the stray message are gone"
    )


def test_a_wait_right_after_the_last_one_ended_is_not_delayed_by_an_abandoned_long_poll(aws, ecs, sqs):
    """As a pipeline's next step in a triggerer: the poller of the wait that ended lingers until its long
    poll returns. A long poll abandoned mid-way would take the next STOPPED event and hide it for the 10 s
    visibility timeout (SQS does that, and so does the local one)."""

    async def main() -> dict[str, Any]:
        group, (first,) = _start(aws, ecs, 1, duration=0.5)
        aws.post("/_local/event-faults", {"kind": "drop", "match": {"started_by": group}})
        await anext(_events_trigger(first, reconcile=2).run())  # by reconciliation, mid long poll
        _, (second,) = _start(aws, ecs, 1, duration=1.5)
        return (await anext(_events_trigger(second).run())).payload

    event = asyncio.run(asyncio.wait_for(main(), SLOW_POLL))

    _settled_by_events([event], [event["task_arn"]])
    stopped_at = datetime.fromisoformat(event["task"]["stoppedAt"]).timestamp()
    assert event["detected_at"] - stopped_at < 3, "not hidden by a long poll nobody reads"


def test_a_wait_that_comes_while_the_last_poller_closes_is_still_watched(aws, ecs, monkeypatch):
    """A triggerer starts a trigger at any moment, also while the poller of the wait that just ended closes
    its ECS client. Such a wait gets a poller that runs: found as a step that waited forever on the real
    triggerer, its poller deregistered only after the close, so the wait joined a poller that was ending."""
    monkeypatch.setattr(state_events, "WAIT_SECONDS", 1)  # the ended wait's poller lingers 1 s, not 20
    _, (first,) = _start(aws, ecs, 1, duration=0.5)
    _, (second,) = _start(aws, ecs, 1, duration=1)
    arriving: list[asyncio.Future] = []
    close = AioBaseClient.__aexit__

    async def closing(client: AioBaseClient, *exc_info: Any) -> None:
        if client.meta.service_model.service_name == "ecs" and not arriving:
            arriving.append(asyncio.ensure_future(anext(_events_trigger(second).run())))
            await asyncio.sleep(0)  # the new trigger's first step (it registers its wait) runs now
        await close(client, *exc_info)

    monkeypatch.setattr(AioBaseClient, "__aexit__", closing)

    async def main() -> dict[str, Any]:
        await anext(_events_trigger(first).run())
        while not arriving:
            await asyncio.sleep(0.1)
        return (await arriving[0]).payload

    event = asyncio.run(asyncio.wait_for(main(), SLOW_POLL / 2))

    _settled_by_events([event], [second])


def test_a_stopped_event_that_came_before_its_wait_ends_it_at_once(aws, ecs, sqs):
    (_, early), (_, late) = _start(aws, ecs, 2, duration=0.5), _start(aws, ecs, 1, duration=6)
    since = time.time()

    async def main() -> list[dict[str, Any]]:
        waiting = asyncio.ensure_future(anext(_events_trigger(late[0]).run()))
        await asyncio.sleep(4)  # the early tasks stopped and their events were read while nobody waited
        done = await asyncio.gather(*(anext(_events_trigger(arn).run()) for arn in early))
        return [event.payload for event in [*done, await waiting]]

    events = asyncio.run(asyncio.wait_for(main(), SLOW_POLL))

    _settled_by_events(events, [*early, *late])
    assert _describes(aws, since) == 1


def test_sqs_throttling_falls_back_to_polling_without_failing_a_wait(aws, ecs, sqs):
    _, arns = _start(aws, ecs, 3, duration=2)
    aws.post("/_local/faults", {"service": "sqs", "action": "ReceiveMessage", "kind": "throttle"})
    since = time.time()

    events = wait_all([_events_trigger(arn, poll=1) for arn in arns], timeout=SLOW_POLL)

    _settled_by_events(events, arns)
    assert _describes(aws, since) >= 2, "polled at the poll interval while the queue was throttled"


def test_the_queue_deleted_mid_run_falls_back_to_polling_and_recovers_when_it_is_back(aws, ecs, sqs, events):
    _, arns = _start(aws, ecs, 2, duration=4)
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    since = time.time()
    health: list[bool] = []

    async def main() -> list[dict[str, Any]]:
        waits = [asyncio.ensure_future(anext(_events_trigger(arn, poll=1).run())) for arn in arns]
        await asyncio.sleep(1)
        (watcher,) = poller._pollers.values()
        health.append(watcher.events_ok)
        sqs.delete_queue(QueueUrl=url)
        done = await asyncio.gather(*waits)
        health.append(watcher.events_ok)
        return [event.payload for event in done]

    try:
        ended = asyncio.run(asyncio.wait_for(main(), 2 * SLOW_POLL))  # a long poll may end first (20 s)
    finally:
        _restore_route(ecs, sqs, events)

    _settled_by_events(ended, arns)
    assert health == [True, False]
    assert _describes(aws, since) >= 2
    _, recovered = _start(aws, ecs, 1, duration=0.5)
    since = time.time()
    _settled_by_events(wait_all([_events_trigger(recovered[0])], timeout=SLOW_POLL), recovered)
    assert _describes(aws, since) == 1, "with the queue back, its event ended the wait"


def _plan(ecs, sqs, events, queue: str | None = None) -> list[str]:
    env = _environment(queue or QUEUE)
    return [action for action, _, _ in event_route.plan(env, {}, sqs, events, ecs)]


def _restore_route(ecs, sqs, events, queue: str | None = None) -> None:
    for action, kind, request in event_route.plan(_environment(queue or QUEUE), {}, sqs, events, ecs):
        if action != "unchanged":
            event_route.apply(kind, request, sqs, events)


def test_the_route_is_created_once_and_then_left_alone(aws, ecs, sqs, events):
    assert _plan(ecs, sqs, events, SEEDED_QUEUE) == ["unchanged", "unchanged"], "local.seed created it"
    cluster = ecs.describe_clusters(clusters=[CLUSTER])["clusters"][0]["clusterArn"]
    assert json.loads(events.describe_rule(Name=QUEUE)["EventPattern"]) == rule_pattern(cluster)
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]
    policy = json.loads(attributes["Policy"])
    assert policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"].endswith(f":rule/{QUEUE}")

    events.put_rule(Name=QUEUE, EventPattern=json.dumps({"source": ["aws.ecs"]}))  # someone changed it
    assert _plan(ecs, sqs, events) == ["unchanged", "update"]
    _restore_route(ecs, sqs, events)
    assert _plan(ecs, sqs, events) == ["unchanged", "unchanged"]
    sqs.delete_queue(QueueUrl=url)
    assert _plan(ecs, sqs, events) == ["create", "unchanged"]


def test_a_listener_that_released_an_event_pauses_before_it_reads_again(aws, ecs, sqs):
    """With several triggerers the next long poll to take a released event should be another one's: a
    listener that keeps releasing reads at most once per ``RELEASE_PAUSE``, not back to back."""

    class Refusing:  # a poller with no wait for anything it receives: it releases all
        def on_events(self, changes):
            return state_events.Handling([], [(c.receipt_handle, 0) for c in changes])

        def events_healthy(self, healthy):
            pass

        def wants_events(self):
            return True

    def released(since: float) -> list[dict]:
        return aws.get(f"/_local/calls?action=ChangeMessageVisibilityBatch&since={since}")

    async def main() -> float:
        listener = state_events.EventListener(Refusing(), QUEUE, "aws_local", "us-east-1", {}, 1.0)
        began = time.time()
        listener.start()
        _start(aws, ecs, 1, duration=0.2)
        while not (first := released(began)):
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # well within FAST_RELEASE_SECONDS of the event: released at once
        await listener.stop()
        return first[0]["t"]

    since = asyncio.run(main())
    receives = [c["t"] for c in aws.get(f"/_local/calls?action=ReceiveMessage&service=sqs&since={since}")]
    assert len(released(since)) >= 3, "the event came back to it again and again"
    gaps = [later - earlier for earlier, later in zip(receives, receives[1:], strict=False)]
    assert min(gaps) >= state_events.RELEASE_PAUSE, gaps
