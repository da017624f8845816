"""Starting a try's ECS task (``ecsjobs.execution.starting``) without Airflow: a step's RunTask fields on a
plain object, its ECS client plain boto3 over HTTP to the local AWS."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from ecsjobs.catalog.loading import load_catalog
from ecsjobs.decisions.outcome import OutcomeClass
from ecsjobs.execution.starting import MAX_OVERRIDES_LENGTH, start
from local.settings import REPO
from tests.support import no_spot_capacity_once, wait_until

STARTED_BY = "test-starting"
QUICK = {"provisioning": 0.1, "pending": 0.1, "duration": 0.5, "stopping": 0.2}


def step(ecs, **fields) -> SimpleNamespace:
    """A Fargate Spot step of ``data_processor`` in the local environment, falling back after one failure."""
    env = load_catalog(REPO / "config", "local").environment
    settings = {
        "client": ecs,
        "log": logging.getLogger("test_starting"),
        "cluster": env.cluster,
        "task_definition": "data-processor",
        "overrides": {"containerOverrides": [{"name": "batch-container", "environment": []}]},
        "owner": "airflow",
        "started_by": STARTED_BY,
        "client_token": None,
        "launch": "fargate_spot",
        "launch_type": None,
        "capacity_provider_strategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
        "on_demand": {"launch_type": "FARGATE", "capacity_provider_strategy": None},
        "fallback_after": 1,
        "platform_version": None,
        "group": None,
        "network_configuration": {
            "awsvpcConfiguration": {"subnets": list(env.subnets), "securityGroups": list(env.security_groups)}
        },
        "propagate_tags": None,
        "tags": {"job": "data_processor"},
        "arn": None,
    }
    return SimpleNamespace(**{**settings, **fields})


@pytest.fixture(autouse=True)
def _quick_and_stopped(aws, ecs):
    """The tasks started here run briefly and have stopped before the test ends: their state change events
    then reach no other test's queue."""
    aws.post("/_local/scenarios", {"match": {"started_by": STARTED_BY}, "scenario": QUICK})
    yield
    cluster = load_catalog(REPO / "config", "local").environment.cluster

    def all_stopped() -> bool:
        running = ecs.list_tasks(cluster=cluster, startedBy=STARTED_BY, desiredStatus="RUNNING")["taskArns"]
        if not running:
            return True
        return all(
            t["lastStatus"] == "STOPPED" for t in ecs.describe_tasks(cluster=cluster, tasks=running)["tasks"]
        )

    wait_until(all_stopped, 30, "the tasks started here to stop")


def tags(task: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in task.get("tags", [])}


def test_spot_without_capacity_starts_the_try_on_demand(aws, ecs):
    no_spot_capacity_once(aws)
    spot = step(ecs)
    started = start(spot, try_number=2, spot_losses=0)
    assert (started.launch, started.failed) == ("on_demand", None)
    (task,) = ecs.describe_tasks(cluster=spot.cluster, tasks=[spot.arn], include=["TAGS"])["tasks"]
    assert task["launchType"] == "FARGATE" and not task.get("capacityProviderName")
    assert tags(task) == {"job": "data_processor", "ecsjobs:try": "2", "ecsjobs:launch": "on_demand"}


def test_a_spot_loss_in_an_earlier_try_starts_on_demand_at_once(aws, ecs):
    spot = step(ecs)
    assert start(spot, try_number=2, spot_losses=1).launch == "on_demand"
    (task,) = ecs.describe_tasks(cluster=spot.cluster, tasks=[spot.arn])["tasks"]
    assert task["launchType"] == "FARGATE"


@pytest.mark.parametrize(
    "fields, reason",
    [
        pytest.param(
            {"task_definition": "no-such-family"}, "RunTask refused: ClientException", id="ECS refuses it"
        ),
        pytest.param(
            {"overrides": {"containerOverrides": [{"name": "c", "command": ["x" * MAX_OVERRIDES_LENGTH]}]}},
            f"ECS allows {MAX_OVERRIDES_LENGTH}",
            id="overrides over ECS's limit",
        ),
    ],
)
def test_a_request_ecs_refuses_is_rejected_without_a_task(aws, ecs, fields, reason):
    refused = step(ecs, **fields)
    started = start(refused, try_number=1, spot_losses=0)
    assert started.failed is not None and started.failed.cls is OutcomeClass.REJECTED
    assert reason in started.failed.reason and refused.arn is None
