"""One DescribeTasks loop per (AWS connection, region, cluster, event loop), shared by every ECS wait on it.

A triggerer runs all its triggers in one event loop. If each polled its own task, N deferred jobs would cost N
DescribeTasks calls per interval and reach ECS's rate limit (about 20 calls/s per account and region) at a
few hundred jobs. Here a wait registers its task ARN with its cluster's poller and awaits a future; the poller
describes up to 100 tasks per call through one aiobotocore client, settles the futures of tasks that stopped
or that ECS no longer knows, and slows down when ECS throttles it instead of failing anyone. Pollers are keyed
by event loop too, so a client is only used on the loop it was created on: ``dag.test()`` runs each trigger
in its own ``asyncio.run``.

With an events queue (``ecsjobs.waiting.state_events``), the poller learns of a task's end from the task's
STOPPED event and reconciles only once per ``reconcile_interval``, for events that never came: one ListTasks
of the cluster's tasks whose desired status is STOPPED, then DescribeTasks of the watched ones among them (and
of waits not yet described once), so that a reconciliation costs the same whatever the number of waits. While
the queue cannot be read, it polls at its interval again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.amazon.aws.hooks.ecs import EcsHook

from ecsjobs.aws import AWS_ERRORS, backoff, is_throttling, is_transient
from ecsjobs.comms import finished
from ecsjobs.ecs import TaskStatus, resource_name
from ecsjobs.waiting.sightings import Sighting, sightings
from ecsjobs.waiting.state_events import EventListener, Handling, StateChange, release_delay

log = logging.getLogger(__name__)

MAX_ARNS_PER_CALL = 100  # DescribeTasks' limit
# ECS is eventually consistent: a task RunTask just started may be MISSING for a moment. A wait reports
# ``missing`` only once ECS has not known its task for this long.
MISSING_GRACE = 30.0
DEFAULT_RECONCILE_INTERVAL = 60.0
# How many ended tasks the process remembers per cluster: the versions of those a wait settled (to drop
# duplicate and stale events) and the STOPPED events nobody waited for yet (a late wait ends at once). Kept
# beyond a poller's life: a cluster's poller ends with its last wait, and duplicates may come after it.
REMEMBERED_TASKS = 10_000
# botocore first retries a throttled call itself; adaptive mode also rate-limits the client for a while.
DEFAULT_BOTOCORE_CONFIG: dict[str, Any] = {"retries": {"mode": "adaptive", "max_attempts": 5}}
# The poller's own calls are bounded, whatever config its waits carry: one attempt with timeouts. A call that
# botocore retried for a minute (adaptive mode, 10 attempts) would hold up every wait on the cluster; a failed
# round is retried by the next one instead, and only throttling makes the rounds back off.
POLL_CALL_CONFIG: dict[str, Any] = {
    "retries": {"mode": "standard", "total_max_attempts": 1},
    "connect_timeout": 5,
    "read_timeout": 10,
}

PollerKey = tuple[str | None, str | None, str, asyncio.AbstractEventLoop]
_pollers: dict[PollerKey, Poller] = {}


@dataclass
class Memory:
    versions: OrderedDict[str, int] = field(default_factory=OrderedDict)  # of tasks whose wait was settled
    unclaimed: OrderedDict[str, Sighting] = field(default_factory=OrderedDict)  # STOPPED, nobody waited


_memories: dict[tuple[str | None, str | None, str], Memory] = {}


def poller_for(
    aws_conn_id: str | None,
    region_name: str | None,
    cluster: str,
    botocore_config: dict[str, Any] | None = None,
    events_queue: str | None = None,
    reconcile_interval: float = DEFAULT_RECONCILE_INTERVAL,
) -> Poller:
    """The running event loop's poller of this cluster, created on first use.

    The shared clients are built with the ``botocore_config`` of the wait that created the poller, its retries
    and timeouts replaced by :data:`POLL_CALL_CONFIG`; its ``events_queue`` and ``reconcile_interval`` hold
    for every wait on the cluster.
    """
    key = (aws_conn_id, region_name, cluster, asyncio.get_running_loop())
    poller = _pollers.get(key)
    if poller is None:
        config = {**(botocore_config or {}), **POLL_CALL_CONFIG}
        poller = _pollers[key] = Poller(key, config, events_queue, reconcile_interval)
    return poller


class Poller:
    """One asyncio task polling DescribeTasks for every watched ARN; it ends when the last watcher leaves.

    The interval is the smallest one any of its watchers asked for. Rounds back off while ECS throttles them;
    a round that failed otherwise (a 5xx, a timeout, a dropped connection) is simply followed by the next one.
    While its events queue is readable, rounds come once per ``reconcile_interval`` instead.
    """

    def __init__(
        self,
        key: PollerKey,
        botocore_config: dict[str, Any],
        events_queue: str | None = None,
        reconcile_interval: float = DEFAULT_RECONCILE_INTERVAL,
    ) -> None:
        self.key = key
        self.interval = float("inf")
        self.events_queue = events_queue
        self.reconcile_interval = reconcile_interval
        self.events_ok = False  # the queue was read (or found) last time it was tried
        self._botocore_config = botocore_config
        self._waiters: dict[str, set[asyncio.Future[Sighting]]] = {}
        self._missing_since: dict[str, float] = {}
        self._known: set[str] = set()  # watched tasks ECS has described once: reconciled through ListTasks
        self._memory = _memories.setdefault(key[:3], Memory())
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: EventListener | None = None

    @property
    def cluster(self) -> str:
        return self.key[2]

    def watch(self, task_arn: str, interval: float) -> asyncio.Future[Sighting]:
        """A future settled with the task's end (or with the error that makes waiting for it pointless)."""
        future: asyncio.Future[Sighting] = asyncio.get_running_loop().create_future()
        unclaimed = self._memory.unclaimed.pop(task_arn, None)
        if unclaimed is not None:  # its STOPPED event came before its wait
            future.set_result(unclaimed)
            return future
        lingering = not self._waiters
        self._waiters.setdefault(task_arn, set()).add(future)
        self.interval = min(self.interval, interval)
        if self._listener is not None:
            self._listener.want()
            if lingering:
                self._wake.set()  # a lingering poller has a wait again: it polls on
        if self._task is None:  # in a context of its own: its log lines are the triggerer's, not a task's
            self._task = asyncio.create_task(
                self._run(), name=f"ecs-task-poller:{self.cluster}", context=contextvars.Context()
            )
        return future

    async def unwatch(self, task_arn: str, future: asyncio.Future[Sighting]) -> None:
        """Stop watching for this future (settled or not); the last watcher out closes the client, or, with an
        events queue, has the poller end once its listener's long poll in flight has returned (see
        :meth:`_run`)."""
        future.cancel()
        futures = self._waiters.get(task_arn)
        if futures is not None:
            futures.discard(future)
            if not futures:
                del self._waiters[task_arn]
                self._missing_since.pop(task_arn, None)
                self._known.discard(task_arn)
        if self._waiters or self._task is None:
            return
        if self._listener is not None:
            self._wake.set()
            await self._listener.deleted()  # its message, before the event loop may close
            return
        self._retire()
        self._task.cancel()
        await asyncio.wait([self._task])

    def _retire(self) -> None:
        """Take the poller out of :func:`poller_for` the moment it decides to end, before anything is awaited
        (closing its client, stopping its listener): a wait that registered meanwhile would wait forever."""
        if _pollers.get(self.key) is self:
            del _pollers[self.key]

    async def _run(self) -> None:
        """Rounds until no wait is left. With an events queue the poller lingers, still registered, until its
        listener's long poll in flight returns: SQS hands the next message to a long poll whose client went
        away, where it stays invisible for the visibility timeout, so an abandoned one would delay the wait of
        a step that starts right after. A wait that comes meanwhile reuses the poller and its listener."""
        if self.events_queue:
            self._listener = EventListener(
                self, self.events_queue, self.key[0], self.key[1], self._botocore_config, self.interval
            )
            self._listener.start()
        try:
            hook = EcsHook(aws_conn_id=self.key[0], region_name=self.key[1], config=self._botocore_config)
            async with await finished(hook.get_async_conn()) as client:
                try:
                    await self._rounds(client)
                finally:
                    self._retire()
        except Exception as error:  # not CancelledError: being cancelled is how a poller ends
            log.exception("Polling ECS tasks on %s failed", self.cluster)
            for arn in list(self._waiters):
                self._settle(arn, error)
        finally:
            self._retire()
            if self._listener is not None:
                await self._listener.stop()

    async def _rounds(self, client: Any) -> None:
        throttled = 0
        while True:
            if not self._waiters:
                if self._listener is None or await self._listener_idle():
                    return
                continue
            started = time.monotonic()
            throttled = throttled + 1 if await self._poll(client) else 0
            await self._next_round(started, backoff(self.interval, throttled) if throttled else None)

    async def _listener_idle(self) -> bool:
        """Wait until the listener has no long poll in flight or a wait registers; True if idle and still
        nobody waits (the listener starts no new long poll then)."""
        assert self._listener is not None
        self._wake.clear()
        idle = asyncio.ensure_future(self._listener.idle.wait())
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait([idle, woken], return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
            woken.cancel()
        return self._listener.idle.is_set() and not self._waiters

    def wants_events(self) -> bool:
        """Whether the listener should long-poll again: some wait is registered."""
        return bool(self._waiters)

    async def _next_round(self, started: float, pause: float | None) -> None:
        """Wait ``pause`` seconds (backing off) or until a round interval after ``started``; losing the events
        queue cuts the wait short, finding it makes the interval the reconciliation interval.

        The last wait leaving cuts it short too. Not ``asyncio.wait_for``: on Python 3.11 it returns instead
        of raising when the poller is cancelled just as the wake-up comes (the listener finds the queue as the
        last wait leaves), and the wait that cancelled it would wait for the poller forever.
        """
        while True:
            self._wake.clear()
            delay = (self.round_interval if pause is None else pause) - (time.monotonic() - started)
            if delay <= 0:
                return
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                done, _ = await asyncio.wait([woken], timeout=delay)
            finally:
                woken.cancel()
            if not done or not self.events_ok or not self._waiters:
                return

    @property
    def round_interval(self) -> float:
        """Seconds between DescribeTasks rounds: the reconciliation interval while events arrive."""
        return self.reconcile_interval if self.events_ok else self.interval

    def events_healthy(self, healthy: bool) -> None:
        """The listener found (True) or could not read (False) the queue; losing it means polling now."""
        if healthy != self.events_ok:
            self._wake.set()
        if self.events_ok and not healthy:
            log.warning("ECS task events of %s unavailable: polling every %ss", self.cluster, self.interval)
        elif healthy and not self.events_ok:
            log.info(
                "ECS task events of %s from %s: reconciling every %ss",
                self.cluster,
                self.events_queue,
                self.reconcile_interval,
            )
        self.events_ok = healthy

    def on_events(self, changes: list[StateChange]) -> Handling:
        """Settle the waits whose task's STOPPED event arrived. Delete the messages done with (handled,
        duplicate or stale, or older than a reconciliation interval); release the STOPPED events nobody here
        waits for, for another triggerer's wait (``ecsjobs.waiting.state_events``), remembering them for a
        wait that registers here later."""
        delete, release = [], []
        now = time.time()
        for change in changes:
            arn = change.task_arn
            if change.version <= self._memory.versions.get(arn, 0):
                delete.append(change.receipt_handle)
            elif arn in self._waiters:
                if change.task.get("lastStatus") == TaskStatus.STOPPED:
                    self._settle(arn, Sighting(change.task, now))
                delete.append(change.receipt_handle)
            elif (
                change.task.get("lastStatus") != TaskStatus.STOPPED
                or now - change.sent_at > self.reconcile_interval
            ):
                delete.append(change.receipt_handle)
            else:
                _remember(self._memory.unclaimed, arn, Sighting(change.task, now))
                release.append((change.receipt_handle, release_delay(now - change.sent_at)))
        return Handling(delete, release)

    async def _poll(self, client: Any) -> bool:
        """One round over the watched tasks; True if ECS throttled a call. A reconciliation (events readable)
        describes only the tasks ECS lists as stopping or stopped, and the ones never described yet."""
        arns = list(self._waiters)
        if self.events_ok:
            stopping = await self._list_stopping(client)
            if stopping is not None:
                arns = [arn for arn in arns if resource_name(arn) in stopping or arn not in self._known]
        batches = [arns[i : i + MAX_ARNS_PER_CALL] for i in range(0, len(arns), MAX_ARNS_PER_CALL)]
        throttled = await asyncio.gather(*(self._describe(client, batch) for batch in batches))
        return any(throttled)

    async def _list_stopping(self, client: Any) -> set[str] | None:
        """The ids of the cluster's tasks whose desired status is STOPPED (ECS lists a stopped task for at
        least an hour), or None if ListTasks failed: then every watched task is described."""
        found: set[str] = set()
        try:
            async for page in client.get_paginator("list_tasks").paginate(
                cluster=self.cluster,
                desiredStatus=TaskStatus.STOPPED.value,
                PaginationConfig={"PageSize": 100},
            ):
                found.update(resource_name(arn) for arn in page.get("taskArns", []))
        except AWS_ERRORS as error:
            log.warning("ListTasks on %s failed, describing every watched task: %s", self.cluster, error)
            return None
        return found

    async def _describe(self, client: Any, arns: list[str]) -> bool:
        try:
            response = await client.describe_tasks(cluster=self.cluster, tasks=arns)
        except AWS_ERRORS as error:
            if is_throttling(error):
                log.warning("DescribeTasks on %s throttled, backing off: %s", self.cluster, error)
                return True
            if is_transient(error):
                log.warning("DescribeTasks on %s failed, trying again next round: %s", self.cluster, error)
                return False
            for arn in arns:
                self._settle(arn, error)
            return False
        for failure in response.get("failures", []):
            log.info("DescribeTasks on %s: %s is %s", self.cluster, failure.get("arn"), failure.get("reason"))
        now = time.time()
        seen = sightings(response, arns, now)
        for arn in arns:
            sighting = seen.get(arn)
            if sighting is None or sighting.task is not None:
                self._missing_since.pop(arn, None)
                if arn in self._waiters:
                    self._known.add(arn)
            elif now - self._missing_since.setdefault(arn, now) < MISSING_GRACE:
                continue
            if sighting is not None:
                self._settle(arn, sighting)
        return False

    def _settle(self, task_arn: str, outcome: Sighting | BaseException) -> None:
        self._missing_since.pop(task_arn, None)
        self._known.discard(task_arn)
        if isinstance(outcome, Sighting) and outcome.task is not None:
            _remember(self._memory.versions, task_arn, int(outcome.task.get("version") or 1))
        for future in self._waiters.pop(task_arn, ()):
            if future.done():
                continue
            if isinstance(outcome, Sighting):
                future.set_result(outcome)
            else:
                future.set_exception(outcome)


def _remember(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > REMEMBERED_TASKS:
        memory.popitem(last=False)
