"""Once-only claims across processes and hosts: the first to create a CloudWatch Logs stream does the work.

On a distributed Airflow (MWAA: several schedulers, a triggerer beside each, Celery workers) two processes
may each decide to do the same one-off thing: a triggerer restarted after a step's "running late" time
sends the alert again, a run's deadline callback is run again, two tries of one step both hold its ECS
task's result. ``CreateLogStream`` either creates the stream or fails with
``ResourceAlreadyExistsException`` (CloudWatch Logs API Reference, CreateLogStream), atomically, so a stream
``claims/<kind>/<job>/<digest of key>`` in the audit log group is a test-and-set that the step's role may
already do (it writes the audit records there). No DB is needed: a trigger has none in Airflow 3.

A claim that cannot be made (CloudWatch Logs unreachable, no permission) is granted, with a warning: an
alert or a record twice beats one lost.

An alert is claimed, sent, then marked done with an event in its claim stream (:func:`aonce`): a process
killed between its claim and its send (a triggerer lost at the alert's time) would otherwise take the alert
with it. A claim still without its mark :data:`TAKEOVER_AFTER` seconds on is taken over, by one process (a
second claim, ``<kind>-takeover``); the alert is sent twice only if the claimer died between its send and its
mark, a window of one HTTP call.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

from ecsjobs.comms import finished

log = logging.getLogger(__name__)

TAKEOVER_AFTER = 15.0  # seconds after which a claim with no mark of its work done is taken over
DONE = "done"


def stream_name(kind: str, job: str, key: str) -> str:
    """The claim's log stream (no ``:`` or ``*``, at most 512 characters, as CloudWatch Logs requires)."""
    return f"claims/{kind}/{job[:250]}/{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def claim(client: Any, group: str, kind: str, job: str, key: str) -> bool:
    """True if this caller is the first to claim ``(kind, job, key)``, with a CloudWatch Logs ``client``."""
    try:
        client.create_log_stream(logGroupName=group, logStreamName=stream_name(kind, job, key))
    except client.exceptions.ResourceAlreadyExistsException:
        return False
    except Exception:
        log.warning("Could not claim %s of %s in %s; going ahead", kind, key, group, exc_info=True)
    return True


async def aonce(
    aws_conn_id: str | None,
    region_name: str | None,
    group: str,
    kind: str,
    job: str,
    key: str,
    send: Callable[[], Awaitable[bool]],
) -> bool:
    """Await ``send`` (True once it has been done) for ``(kind, job, key)`` once across processes, even if
    the first to claim it dies before sending; False if another process did it."""
    name = stream_name(kind, job, key)
    try:
        hook = AwsLogsHook(aws_conn_id=aws_conn_id, region_name=region_name)
        async with await finished(hook.get_async_conn()) as client:
            if not await _first(client, group, name) and not await _taken_over(client, group, kind, job, key):
                return False
            if not await send():
                return False
            event = {"timestamp": int(time.time() * 1000), "message": DONE}
            await client.put_log_events(logGroupName=group, logStreamName=name, logEvents=[event])
            return True
    except Exception:
        log.warning("Could not claim %s of %s in %s; going ahead", kind, key, group, exc_info=True)
        return await send()


async def _first(client: Any, group: str, name: str) -> bool:
    try:
        await client.create_log_stream(logGroupName=group, logStreamName=name)
        return True
    except client.exceptions.ResourceAlreadyExistsException:
        return False


async def _taken_over(client: Any, group: str, kind: str, job: str, key: str) -> bool:
    """Whether the claim of another process is to be done here: still not marked done ``TAKEOVER_AFTER``
    seconds after it was made (its claimer died), and this process the first to take it over."""
    name = stream_name(kind, job, key)
    while True:
        events = await client.get_log_events(logGroupName=group, logStreamName=name, startFromHead=True)
        if any(e["message"] == DONE for e in events["events"]):
            return False
        streams = await client.describe_log_streams(logGroupName=group, logStreamNamePrefix=name)
        created = next(s["creationTime"] / 1000 for s in streams["logStreams"] if s["logStreamName"] == name)
        if (age := time.time() - created) >= TAKEOVER_AFTER:
            log.warning("The claim of %s of %s was never marked done: taking it over", kind, key)
            return await _first(client, group, stream_name(f"{kind}-takeover", job, key))
        await asyncio.sleep(min(TAKEOVER_AFTER - age, 5.0))
