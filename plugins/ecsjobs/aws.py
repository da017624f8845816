"""The package's AWS clients (one botocore configuration, one client per service, connection and region), and
how their errors are told apart.

Throttled calls must slow a step down, never fail it (botocore's default gives up after 3 attempts):
adaptive mode adds client-side rate limiting on top of the retries. A worker runs one try and a DAG
processor many callbacks: the audit log, metrics and task-definition lookups of a process share their
clients instead of building one (and reading its connection) per call.
"""

from __future__ import annotations

import functools
import json
import random
import time
from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

BOTOCORE_CONFIG: dict[str, Any] = {"retries": {"mode": "adaptive", "max_attempts": 10}}
# The audit log and metrics are side channels: with a step's configuration but at most 3 attempts, so that a
# CloudWatch outage delays a step's end by seconds, not by the minute 10 adaptive attempts can take.
SIDE_CHANNEL_RETRIES: dict[str, Any] = {"mode": "adaptive", "max_attempts": 3}
MAX_BACKOFF = 60.0  # seconds: the longest a throttled loop waits between rounds
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


def client(
    service: str, aws_conn_id: str | None, region: str | None, botocore_config: dict[str, Any] | None = None
) -> Any:
    """A boto3 client of ``service`` through the Airflow connection (``BOTOCORE_CONFIG`` by default),
    built once per process for each service, connection, region and configuration."""
    return _client(
        service, aws_conn_id, region, json.dumps(botocore_config or BOTOCORE_CONFIG, sort_keys=True)
    )


@functools.cache
def _client(service: str, aws_conn_id: str | None, region: str | None, config: str) -> Any:
    hook = AwsBaseHook(
        aws_conn_id=aws_conn_id, region_name=region, client_type=service, config=json.loads(config)
    )
    return hook.conn


def side_channel(
    service: str, aws_conn_id: str | None, region: str | None, botocore_config: dict[str, Any] | None = None
) -> Any:
    """:func:`client` for the audit log and metrics: ``botocore_config`` with ``SIDE_CHANNEL_RETRIES``."""
    config = {**(botocore_config or BOTOCORE_CONFIG), "retries": SIDE_CHANNEL_RETRIES}
    return client(service, aws_conn_id, region, config)


def is_transient(error: Exception) -> bool:
    """Throttling, a 5xx or a dropped connection: worth trying again later, never a reason to fail."""
    if not isinstance(error, ClientError):
        return isinstance(error, HTTPClientError | BotoConnectionError)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = error.response.get("Error", {}).get("Code")
    return code in TRANSIENT_ERROR_CODES or status == 429 or status >= 500


def is_throttling(error: Exception) -> bool:
    """AWS asking the caller to slow down (as opposed to failing a call)."""
    if not isinstance(error, ClientError):
        return False
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error.response.get("Error", {}).get("Code") in THROTTLING_ERROR_CODES or status == 429


def backoff(interval: float, failures: int) -> float:
    """Seconds to wait after ``failures`` failed rounds in a row: doubling, capped, with jitter."""
    ceiling = min(MAX_BACKOFF, interval * 2**failures)
    return random.uniform(ceiling / 2, ceiling)


def describe_aws_error(err: BotoCoreError | ClientError) -> str:
    """One line for a command's user: the call, the error code and AWS's message."""
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"AWS {err.operation_name}: {error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
    return f"AWS: {err}"


def logs_insights(
    client: Any, log_group: str, query: str, start: datetime, end: datetime, timeout: float
) -> list[dict[str, str]]:
    """The rows of a Logs Insights query over ``log_group`` between ``start`` and ``end`` (whole seconds, so
    widened to them), each as ``{field: value}``; TimeoutError if it is still running after ``timeout`` s."""
    query_id = client.start_query(
        logGroupName=log_group,
        startTime=int(start.timestamp()),
        endTime=int(end.timestamp()) + 1,
        queryString=query,
    )["queryId"]
    deadline = time.monotonic() + timeout
    while True:
        response = client.get_query_results(queryId=query_id)
        if response["status"] not in ("Scheduled", "Running"):
            break
        if time.monotonic() > deadline:
            client.stop_query(queryId=query_id)
            raise TimeoutError(f"Logs Insights query {query_id} still running after {timeout} s")
        time.sleep(1)
    if response["status"] != "Complete":
        raise RuntimeError(f"Logs Insights query {query_id} ended {response['status']}")
    return [{cell["field"]: cell["value"] for cell in row} for row in response["results"]]
