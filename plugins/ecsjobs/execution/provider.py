"""The Amazon provider's private surface that ``EcsJobOperator`` uses, in one place.

The operator subclasses the provider's ``EcsRunTaskOperator`` for its hook, connection handling, XCom and
links, and uses three of its private methods, all about the task's CloudWatch log stream. They were checked
against the provider versions of both lanes; ``tests/unit/execution/test_provider.py`` fails when an upgrade
moves them.
"""

from __future__ import annotations

from typing import Any

CHECKED_VERSIONS = ("9.25.0", "9.39.0")  # mwaa lane (Airflow 3.2.1), latest lane (Airflow 3.3.2)
PRIVATE_METHODS = ("_aws_logs_enabled", "_get_logs_stream_name", "_get_task_log_fetcher")


def logs_enabled(operator: Any) -> bool:
    """Whether the operator knows the task's awslogs group and stream prefix."""
    return bool(operator._aws_logs_enabled())


def log_stream(operator: Any) -> str:
    """The CloudWatch log stream of the operator's container in its task (``operator.arn``)."""
    return str(operator._get_logs_stream_name())


def last_log_lines(operator: Any, count: int) -> list[str]:
    """The last ``count`` lines of that stream, as the provider's log fetcher reads them."""
    return list(operator._get_task_log_fetcher().get_last_log_messages(count))
