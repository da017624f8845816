"""One DescribeTasks loop per (AWS connection, region, cluster, event loop), shared by every ECS wait on it.

A triggerer runs all its triggers in one event loop. If each polled its own task, N deferred jobs would cost N
DescribeTasks calls per interval and reach ECS's rate limit (about 20 calls/s per account and region) at a
few hundred jobs. Here a wait registers its task ARN with its cluster's poller and awaits a future; the poller
describes up to 100 tasks per call through one aiobotocore client, settles the futures of tasks that stopped
or that ECS no longer knows, and slows down when ECS throttles it instead of failing anyone. Pollers are keyed
by event loop too, so a client is only used on the loop it was created on: ``dag.test()`` runs each trigger
in its own ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.ecs import EcsHook
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

log = logging.getLogger(__name__)

MAX_ARNS_PER_CALL = 100  # DescribeTasks' limit
MAX_BACKOFF = 60.0  # seconds: the longest a throttled poller waits between rounds
# ECS is eventually consistent: a task RunTask just started may be MISSING for a moment. A wait reports
# ``missing`` only once ECS has not known its task for this long.
MISSING_GRACE = 30.0
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
THROTTLING_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
    }
)
TRANSIENT_ERROR_CODES = THROTTLING_ERROR_CODES | {"ServerException", "InternalFailure", "ServiceUnavailable"}
AWS_ERRORS = (ClientError, HTTPClientError, BotoConnectionError)

PollerKey = tuple[str | None, str | None, str, asyncio.AbstractEventLoop]
_pollers: dict[PollerKey, Poller] = {}


@dataclass(frozen=True)
class Sighting:
    """A task's end as the poller saw it: its final description (JSON-ready), or None if ECS lost it."""

    task: dict[str, Any] | None
    detected_at: float  # epoch seconds


def poller_for(
    aws_conn_id: str | None, region_name: str | None, cluster: str, botocore_config: dict | None = None
) -> Poller:
    """The running event loop's poller of this cluster, created on first use.

    The shared client is built with the ``botocore_config`` of the wait that created the poller, its retries
    and timeouts replaced by :data:`POLL_CALL_CONFIG`.
    """
    key = (aws_conn_id, region_name, cluster, asyncio.get_running_loop())
    poller = _pollers.get(key)
    if poller is None:
        poller = _pollers[key] = Poller(key, {**(botocore_config or {}), **POLL_CALL_CONFIG})
    return poller


class Poller:
    """One asyncio task polling DescribeTasks for every watched ARN; it ends when the last watcher leaves.

    The interval is the smallest one any of its watchers asked for. Rounds back off while ECS throttles them;
    a round that failed otherwise (a 5xx, a timeout, a dropped connection) is simply followed by the next one.
    """

    def __init__(self, key: PollerKey, botocore_config: dict[str, Any]) -> None:
        self.key = key
        self.interval = float("inf")
        self._botocore_config = botocore_config
        self._waiters: dict[str, set[asyncio.Future[Sighting]]] = {}
        self._missing_since: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def cluster(self) -> str:
        return self.key[2]

    def watch(self, task_arn: str, interval: float) -> asyncio.Future[Sighting]:
        """A future settled with the task's end (or with the error that makes waiting for it pointless)."""
        future: asyncio.Future[Sighting] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(task_arn, set()).add(future)
        self.interval = min(self.interval, interval)
        if self._task is None:  # in a context of its own: its log lines are the triggerer's, not a task's
            self._task = asyncio.create_task(
                self._run(), name=f"ecs-task-poller:{self.cluster}", context=contextvars.Context()
            )
        return future

    async def unwatch(self, task_arn: str, future: asyncio.Future[Sighting]) -> None:
        """Stop watching for this future (settled or not); the last watcher out closes the client."""
        future.cancel()
        futures = self._waiters.get(task_arn)
        if futures is not None:
            futures.discard(future)
            if not futures:
                del self._waiters[task_arn]
                self._missing_since.pop(task_arn, None)
        if self._waiters or self._task is None:
            return
        if _pollers.get(self.key) is self:
            del _pollers[self.key]  # before awaiting, so that a new wait gets a new poller
        self._task.cancel()
        await asyncio.wait([self._task])

    async def _run(self) -> None:
        try:
            hook = EcsHook(aws_conn_id=self.key[0], region_name=self.key[1], config=self._botocore_config)
            async with await hook.get_async_conn() as client:
                throttled = 0
                while True:
                    started = time.monotonic()
                    throttled = throttled + 1 if await self._poll(client) else 0
                    if throttled:
                        delay = backoff(self.interval, throttled)
                    else:
                        delay = self.interval - (time.monotonic() - started)
                    await asyncio.sleep(max(0.0, delay))
        except Exception as error:  # not CancelledError: being cancelled is how a poller ends
            log.exception("Polling ECS tasks on %s failed", self.cluster)
            for arn in list(self._waiters):
                self._settle(arn, error)
        finally:
            if _pollers.get(self.key) is self:
                del _pollers[self.key]

    async def _poll(self, client: Any) -> bool:
        """One round over every watched task; True if ECS throttled a call."""
        arns = list(self._waiters)
        batches = [arns[i : i + MAX_ARNS_PER_CALL] for i in range(0, len(arns), MAX_ARNS_PER_CALL)]
        throttled = await asyncio.gather(*(self._describe(client, batch) for batch in batches))
        return any(throttled)

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
            elif now - self._missing_since.setdefault(arn, now) < MISSING_GRACE:
                continue
            if sighting is not None:
                self._settle(arn, sighting)
        return False

    def _settle(self, task_arn: str, outcome: Sighting | BaseException) -> None:
        self._missing_since.pop(task_arn, None)
        for future in self._waiters.pop(task_arn, ()):
            if future.done():
                continue
            if isinstance(outcome, Sighting):
                future.set_result(outcome)
            else:
                future.set_exception(outcome)


def sightings(response: dict[str, Any], arns: list[str], detected_at: float) -> dict[str, Sighting]:
    """The requested tasks whose wait is over: STOPPED ones, and ones ECS does not know (``MISSING``).

    ECS answers ``failures: [{"arn", "reason": "MISSING"}]`` for a task that aged out (about an hour after it
    stopped) and, briefly, for one it has just started; a task in neither list is treated the same way. The
    poller reports a missing task only after ``MISSING_GRACE``.
    """
    described: dict[str, dict[str, Any]] = {}
    for task in response.get("tasks", []):
        described[task["taskArn"]] = task
        described[task["taskArn"].rsplit("/", 1)[-1]] = task  # the request may name a task by its id
    seen = {}
    for arn in arns:
        task = described.get(arn)
        if task is None:
            seen[arn] = Sighting(None, detected_at)
        elif task.get("lastStatus") == "STOPPED":
            seen[arn] = Sighting(jsonable(task), detected_at)
    return seen


def is_transient(error: Exception) -> bool:
    """Throttling, a 5xx or a dropped connection: worth trying again later, never a reason to fail."""
    if not isinstance(error, ClientError):
        return isinstance(error, HTTPClientError | BotoConnectionError)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = error.response.get("Error", {}).get("Code")
    return code in TRANSIENT_ERROR_CODES or status == 429 or status >= 500


def is_throttling(error: Exception) -> bool:
    """ECS asking the caller to slow down (as opposed to failing a call)."""
    if not isinstance(error, ClientError):
        return False
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error.response.get("Error", {}).get("Code") in THROTTLING_ERROR_CODES or status == 429


def backoff(interval: float, failures: int) -> float:
    """Seconds to wait after ``failures`` failed rounds in a row: doubling, capped, with jitter."""
    ceiling = min(MAX_BACKOFF, interval * 2**failures)
    return random.uniform(ceiling / 2, ceiling)


def jsonable(value: Any) -> Any:
    """A DescribeTasks answer with its datetimes as ISO 8601 strings, so that it fits in a trigger event."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value
