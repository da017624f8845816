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
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

from ecsjobs.comms import finished

log = logging.getLogger(__name__)


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


async def aclaim(
    aws_conn_id: str | None, region_name: str | None, group: str, kind: str, job: str, key: str
) -> bool:
    """:func:`claim` for a trigger or an async callback, through an aiobotocore client."""
    name = stream_name(kind, job, key)
    try:
        hook = AwsLogsHook(aws_conn_id=aws_conn_id, region_name=region_name)
        async with await finished(hook.get_async_conn()) as client:
            try:
                await client.create_log_stream(logGroupName=group, logStreamName=name)
            except client.exceptions.ResourceAlreadyExistsException:
                return False
    except Exception:
        log.warning("Could not claim %s of %s in %s; going ahead", kind, key, group, exc_info=True)
    return True
