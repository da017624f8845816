"""The audit log: one JSON record per step try that reached a result, success included.

Written to the environment's CloudWatch Logs group (one stream per job) and to the task log, so "what ran,
where, how it ended" is answerable from Logs Insights without Airflow's metadata DB. Success goes here and
nowhere else; a write failure is logged and never fails the job.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)


def write(client: Any, group: str, record: dict[str, Any]) -> bool:
    """Put ``record`` in ``group`` with the CloudWatch Logs ``client``, stream = the job id; the stream is
    created on first use."""
    line = json.dumps(record, sort_keys=True, default=str)
    log.info("Audit record: %s", line)
    stream = record["job"]
    event = {"timestamp": int(time.time() * 1000), "message": line}
    try:
        try:
            client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[event])
        except client.exceptions.ResourceNotFoundException:
            # Another step of the job may have created it first.
            with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
                client.create_log_stream(logGroupName=group, logStreamName=stream)
            client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[event])
    except Exception:  # the audit log must never fail the job it records
        log.warning("Could not write the audit record to %s/%s", group, stream, exc_info=True)
        return False
    return True


def reported(
    client: Any, group: str, record: dict[str, Any], since: datetime | None, within: float = 0.0
) -> bool:
    """Whether ``group`` holds a record of the same ECS task with the same outcome, written since ``since``
    (when the task stopped: no earlier record can be of its result), looking again each second for
    ``within`` seconds. A failed read answers False: a record written twice beats a record lost."""
    deadline = time.monotonic() + within
    while not (found := _reported(client, group, record, since)) and time.monotonic() < deadline:
        time.sleep(1.0)
    return found


def _reported(client: Any, group: str, record: dict[str, Any], since: datetime | None) -> bool:
    start = {"startTime": int(since.timestamp() * 1000)} if since else {}
    token: str | None = None
    try:
        while True:
            response = client.get_log_events(
                logGroupName=group,
                logStreamName=record["job"],
                startFromHead=True,
                **start,
                **({"nextToken": token} if token else {}),
            )
            if any(_same_result(event["message"], record) for event in response["events"]):
                return True
            if not response["events"] or response["nextForwardToken"] == token:
                return False
            token = response["nextForwardToken"]
    except Exception:
        log.warning("Could not read the audit records in %s/%s", group, record["job"], exc_info=True)
        return False


def _same_result(message: str, record: dict[str, Any]) -> bool:
    try:
        earlier = json.loads(message)
    except ValueError:
        return False
    return isinstance(earlier, dict) and all(earlier.get(k) == record[k] for k in ("task_arn", "outcome"))
