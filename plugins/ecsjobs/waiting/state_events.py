"""ECS task state change events from EventBridge through SQS: how waits learn of a task's end within a second.

ECS puts every change of a task's state on the default event bus ("ECS Task State Change", its ``detail`` the
DescribeTasks shape of the task, with a ``version`` that grows with each change). An environment with
``task_events`` has a rule (created by ``python -m ecsjobs sync-monitoring``) that sends its cluster's STOPPED
events to an SQS queue. A cluster's poller (``ecsjobs.waiting.poller``) runs one :class:`EventListener`, which
long-polls that queue and hands each batch to the poller; DescribeTasks then only reconciles, once per
``reconcile_interval``, for events that were lost. When the queue cannot be read (throttled, deleted, no
route to SQS), the poller polls at its ``poll_interval`` again until it can.

Several triggerers (MWAA runs one beside each of its 2 to 5 schedulers) read the one queue, and SQS hands a
message to whichever long poll comes first, not to the triggerer holding the wait. So an event nobody here
waits for is remembered (a wait that registers here later ends at once) and *released*: made visible again
at once with ChangeMessageVisibility 0, and this triggerer pauses its reading for :data:`RELEASE_PAUSE`, so
that the next long poll to take it is another triggerer's, not its own again. Released at once for its first
:data:`FAST_RELEASE_SECONDS` (by age, not by receive count: triggerers that do not hold the wait can pass a
message back and forth many times in the moment the holder is busy), then after a delay growing with its
age up to the visibility timeout; once it is older than a reconciliation interval the reconciliations have
covered any wait for it and it is deleted. Alternatives weighed: a queue per triggerer fanned out by the
rule (a rule has at most 5 targets, and triggerers come and go with MWAA's scaling), events shared through
the metadata DB (a triggerer has no DB session in Airflow 3, and every event would cost a write and a poll);
releasing keeps the one queue and one rule of ``sync-monitoring`` and costs about one receive per event and
triggerer.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow.providers.amazon.aws.hooks.sqs import SqsHook

from ecsjobs.aws import AWS_ERRORS, backoff, is_throttling
from ecsjobs.comms import finished
from ecsjobs.ecs import EcsTask, TaskStatus

if TYPE_CHECKING:
    from types_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger(__name__)

SOURCE = "aws.ecs"
DETAIL_TYPE = "ECS Task State Change"
WAIT_SECONDS = 20  # SQS's longest long poll: about 3 receives a minute while nothing stops
MAX_MESSAGES = 10  # SQS's largest batch
# A received message stays invisible this long unless released or deleted first: what a triggerer that died
# holding it delays its event by.
VISIBILITY_TIMEOUT = 10
FAST_RELEASE_SECONDS = 3  # an event nobody here claimed is released at once while younger than this
RELEASE_PAUSE = 0.1  # seconds a triggerer waits after releasing, so that another one takes what it released
DELETE_TIMEOUT = 10.0  # seconds the last wait out gives the deletion of its message


def rule_pattern(cluster_arn: str) -> dict[str, Any]:
    """The EventBridge pattern of the rule feeding the queue: the cluster's tasks reaching STOPPED."""
    return {
        "source": [SOURCE],
        "detail-type": [DETAIL_TYPE],
        "detail": {"clusterArn": [cluster_arn], "lastStatus": [TaskStatus.STOPPED.value]},
    }


@dataclass(frozen=True)
class StateChange:
    """One received event: the task's description as of ``version``, and how to delete the message."""

    task_arn: str
    version: int
    task: EcsTask
    receipt_handle: str
    receive_count: int
    sent_at: float  # epoch seconds EventBridge put it in the queue


@dataclass(frozen=True)
class Handling:
    """What to do with a received batch: messages to delete, and (receipt handle, seconds until visible
    again) of the ones to release for another triggerer."""

    delete: list[str]
    release: list[tuple[str, int]]


def release_delay(age: float) -> int:
    """Seconds until an event nobody here waits for is visible again, by its age (seconds since EventBridge
    queued it): at once while younger than :data:`FAST_RELEASE_SECONDS`, then as long as it is past that,
    at least 1 and at most :data:`VISIBILITY_TIMEOUT`."""
    if age < FAST_RELEASE_SECONDS:
        return 0
    return max(1, min(VISIBILITY_TIMEOUT, int(age - FAST_RELEASE_SECONDS)))


def parse(message: MessageTypeDef) -> StateChange | None:
    """The state change an SQS message carries, or None if it is not an ECS task state change event."""
    attributes = message.get("Attributes", {})
    try:
        event = json.loads(message["Body"])
        detail = event["detail"]
        if event.get("detail-type") != DETAIL_TYPE or event.get("source") != SOURCE:
            return None
        return StateChange(
            task_arn=detail["taskArn"],
            version=int(detail.get("version") or 0),
            task=detail,
            receipt_handle=message["ReceiptHandle"],
            receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
            sent_at=int(attributes.get("SentTimestamp", 0)) / 1000,
        )
    except (ValueError, TypeError, KeyError):
        return None


class Receiver(Protocol):
    """What the listener hands events to: the cluster's poller."""

    def on_events(self, changes: list[StateChange]) -> Handling: ...

    def events_healthy(self, healthy: bool) -> None: ...

    def wants_events(self) -> bool: ...  # whether to long-poll again


class EventListener:
    """One asyncio task long-polling the queue and passing what it receives to the poller.

    It never fails a wait: an error marks the events unhealthy (the poller polls again), and the listener
    tries the queue again after a backoff, resolving its URL anew in case it was deleted and recreated. While
    the poller has no wait it starts no long poll (``idle`` is set while none is in flight) until :meth:`want`
    is called.
    """

    def __init__(
        self,
        receiver: Receiver,
        queue: str,
        aws_conn_id: str | None,
        region_name: str | None,
        botocore_config: dict[str, Any],
        retry_interval: float,
    ) -> None:
        self.receiver = receiver
        self.queue = queue
        config = {**botocore_config, "read_timeout": WAIT_SECONDS + 10}  # a long poll answers after 20 s
        self._hook = SqsHook(aws_conn_id=aws_conn_id, region_name=region_name, config=config)
        self._retry_interval = retry_interval
        self._task: asyncio.Task[None] | None = None
        self._deleting: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()  # no long poll in flight: cancelling the listener loses no message
        self.idle.set()
        self._wanted = asyncio.Event()

    def want(self) -> None:
        """A wait registered: long-poll again if waiting for one."""
        self._wanted.set()

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"ecs-task-events:{self.queue}", context=contextvars.Context()
        )

    async def deleted(self) -> None:
        """Until the messages of the waits that just ended are deleted (at most ``DELETE_TIMEOUT``)."""
        if self._deleting is not None:
            await asyncio.wait([self._deleting], timeout=DELETE_TIMEOUT)

    async def stop(self) -> None:
        """Stop reading, once the messages of the waits that just ended are deleted."""
        await self.deleted()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])

    async def _run(self) -> None:
        async with await finished(self._hook.get_async_conn()) as sqs:
            url: str | None = None
            failures = 0
            while True:
                if not self.receiver.wants_events():
                    self._wanted.clear()
                    await self._wanted.wait()
                try:
                    if url is None:
                        url = (await sqs.get_queue_url(QueueName=self.queue))["QueueUrl"]
                        self.receiver.events_healthy(True)
                    self.idle.clear()
                    try:
                        response = await sqs.receive_message(
                            QueueUrl=url,
                            WaitTimeSeconds=WAIT_SECONDS,
                            MaxNumberOfMessages=MAX_MESSAGES,
                            VisibilityTimeout=VISIBILITY_TIMEOUT,
                            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                        )
                    finally:
                        self.idle.set()
                except AWS_ERRORS as error:
                    failures += 1
                    self.receiver.events_healthy(False)
                    if not is_throttling(error):
                        url = None
                    log.warning("Reading ECS task events from %s failed, polling: %s", self.queue, error)
                    await asyncio.sleep(backoff(self._retry_interval, failures))
                    continue
                if failures:
                    failures = 0
                    self.receiver.events_healthy(True)
                messages = response.get("Messages", [])
                changes = [change for change in map(parse, messages) if change is not None]
                handling = self.receiver.on_events(changes)
                if handling.release:  # first: another triggerer's wait is waiting for them
                    await self._release(sqs, url, handling.release)
                done = handling.delete + [m["ReceiptHandle"] for m in messages if parse(m) is None]
                if done:  # the waits settled above end once this awaits: stop() lets it finish
                    self._deleting = asyncio.create_task(self._delete(sqs, url, done))
                    await self._deleting
                if handling.release:
                    await asyncio.sleep(RELEASE_PAUSE)

    async def _release(self, sqs: Any, url: str, releases: list[tuple[str, int]]) -> None:
        """Make messages visible again after their delay; one that fails to be released comes back after
        the visibility timeout instead."""
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": delay}
            for i, (handle, delay) in enumerate(releases)
        ]
        for i in range(0, len(entries), MAX_MESSAGES):
            try:
                await sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries[i : i + MAX_MESSAGES])
            except AWS_ERRORS as error:
                log.warning("Releasing messages on %s for another triggerer failed: %s", self.queue, error)

    async def _delete(self, sqs: Any, url: str, handles: list[str]) -> None:
        """Delete handled messages; one that fails comes back and is recognised as already seen."""
        entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(handles)]
        for i in range(0, len(entries), MAX_MESSAGES):
            try:
                await sqs.delete_message_batch(QueueUrl=url, Entries=entries[i : i + MAX_MESSAGES])
            except AWS_ERRORS as error:
                log.warning("Deleting handled messages from %s failed: %s", self.queue, error)
