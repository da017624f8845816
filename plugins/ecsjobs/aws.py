"""The package's AWS clients: one botocore configuration, one client per service, connection and region.

Throttled calls must slow a step down, never fail it (botocore's default gives up after 3 attempts):
adaptive mode adds client-side rate limiting on top of the retries. A worker runs one try and a DAG
processor many callbacks: the audit log, metrics and task-definition lookups of a process share their
clients instead of building one (and reading its connection) per call.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

BOTOCORE_CONFIG: dict[str, Any] = {"retries": {"mode": "adaptive", "max_attempts": 10}}
# The audit log and metrics are side channels: with a step's configuration but at most 3 attempts, so that a
# CloudWatch outage delays a step's end by seconds, not by the minute 10 adaptive attempts can take.
SIDE_CHANNEL_RETRIES: dict[str, Any] = {"mode": "adaptive", "max_attempts": 3}


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
