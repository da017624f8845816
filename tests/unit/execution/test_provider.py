"""The Amazon provider's private surface the step operator uses is where ``ecsjobs.execution.provider`` says:
this fails when a provider upgrade moves or changes it (``CHECKED_VERSIONS`` names the versions checked)."""

from __future__ import annotations

import inspect
from datetime import timedelta

from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

from ecsjobs.execution import provider
from ecsjobs.execution.operators import EcsJobOperator

ARN = "arn:aws:ecs:us-east-1:123456789012:task/batch-jobs/0123456789abcdef"


def test_the_private_methods_exist_and_take_no_arguments():
    for name in provider.PRIVATE_METHODS:
        method = getattr(EcsRunTaskOperator, name, None)
        assert callable(method), f"the provider has no {name} any more"
        assert list(inspect.signature(method).parameters) == ["self"], name


def test_they_name_the_containers_log_stream_and_read_its_lines():
    operator = EcsJobOperator(
        task_id="t",
        cluster="batch-jobs",
        task_definition="data-processor",
        overrides={},
        container_name="batch-container",
        awslogs_group="/ecs/data-processor",
        awslogs_stream_prefix="ecs",
        step_timeout=timedelta(hours=1),
    )
    operator.arn = ARN
    assert provider.logs_enabled(operator)
    assert provider.log_stream(operator) == "ecs/batch-container/0123456789abcdef"
    fetcher = operator._get_task_log_fetcher()
    assert (fetcher.log_group, fetcher.log_stream_name) == (
        "/ecs/data-processor",
        provider.log_stream(operator),
    )
    assert callable(fetcher.get_last_log_messages)
