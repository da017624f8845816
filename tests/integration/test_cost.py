"""Cost per step run (``ecsjobs.reporting.cost``): estimated from what the local ECS describes of tasks that
ran on Fargate, Fargate Spot, ARM and EC2, at the pinned prices of ``config/prices.yaml``. The prices file:
``tests/unit/catalog/test_prices.py``, its refresh ``tests/unit/cli/test_prices.py``; the audit record,
metric and alert: ``test_alerts.py``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from ecsjobs.catalog.loading import load_catalog, load_prices
from ecsjobs.reporting.cost import estimate, pricing_for
from ecsjobs.waiting.sightings import jsonable
from local.settings import REPO
from tests.support import wait_until
from tests.waits import CLUSTER, NETWORK, QUICK

PRICES = load_prices(REPO / "config")
US = PRICES.regions["us-east-1"]
MINUTE = 60 / 3600  # the hours a task of a few seconds is billed for
EC2_VCPU_HOUR = 0.05
ARM_FAMILY = "cost-arm"


def _pricing(ec2_vcpu_hour: float | None = None) -> dict[str, Any]:
    env = load_catalog(REPO / "config", "local").environment
    return pricing_for(PRICES, env.model_copy(update={"ec2_vcpu_hour": ec2_vcpu_hour}))


def _stopped_task(aws, ecs, family: str = "data-processor", **placement: Any) -> dict[str, Any]:
    """A task that ran about a second, as the trigger's event carries it (times as ISO 8601 text)."""
    group = uuid.uuid4().hex[:16]
    aws.post("/_local/scenarios", {"match": {"started_by": group}, "scenario": {**QUICK, "duration": 0.5}})
    response = ecs.run_task(
        cluster=CLUSTER, taskDefinition=family, networkConfiguration=NETWORK, startedBy=group, **placement
    )
    assert response["failures"] == [], response["failures"]
    arn = response["tasks"][0]["taskArn"]

    def stopped() -> dict[str, Any] | None:
        (task,) = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
        return task if task["lastStatus"] == "STOPPED" else None

    wait_until(stopped, 20, "the task to stop")
    return jsonable(stopped())


@pytest.fixture
def arm_family(ecs) -> str:
    """A Graviton task definition with 50 GiB of ephemeral storage, 30 of them billed."""
    ecs.register_task_definition(
        family=ARM_FAMILY,
        cpu="512",
        memory="1024",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        runtimePlatform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        ephemeralStorage={"sizeInGiB": 50},
        containerDefinitions=[{"name": "app", "image": "busybox", "memory": 1024}],
    )
    return ARM_FAMILY


def test_fargate_bills_vcpu_and_memory_for_at_least_a_minute(aws, ecs):
    task = _stopped_task(aws, ecs, launchType="FARGATE")

    cost = estimate(task, _pricing())

    assert (cost.capacity, cost.vcpu, cost.memory_gb, cost.cpu_architecture) == ("fargate", 1, 2, "x86_64")
    assert cost.billed_seconds == 60, "a task of a second is billed a minute"
    assert cost.usd == pytest.approx(MINUTE * (1 * US.x86_64.vcpu_hour + 2 * US.x86_64.gb_hour))
    assert cost.on_demand_usd == cost.usd
    assert cost.text().startswith(f"${cost.usd:.4f} (estimate)\n1 vCPU, 2 GB, x86_64, 60 s billed on fargate")


def test_fargate_spot_is_on_demand_less_the_spot_discount(aws, ecs):
    task = _stopped_task(aws, ecs, capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT"}])

    cost = estimate(task, _pricing())

    on_demand = MINUTE * (US.x86_64.vcpu_hour + 2 * US.x86_64.gb_hour)
    assert cost.capacity == "fargate_spot"
    assert cost.on_demand_usd == pytest.approx(on_demand)
    assert cost.usd == pytest.approx(on_demand * (1 - PRICES.spot_discount))


def test_arm_tasks_use_the_arm_rates_and_pay_for_storage_past_20_gib(aws, ecs, arm_family):
    task = _stopped_task(aws, ecs, arm_family, launchType="FARGATE")

    cost = estimate(task, _pricing())

    assert (cost.cpu_architecture, cost.vcpu, cost.memory_gb) == ("arm64", 0.5, 1)
    storage = 30 * US.storage_gb_hour
    assert cost.usd == pytest.approx(MINUTE * (0.5 * US.arm64.vcpu_hour + 1 * US.arm64.gb_hour + storage))
    x86 = {**task, "attributes": [], "ephemeralStorage": None}  # the task definition's say then
    assert estimate(x86, _pricing(), "arm64", 50).usd == cost.usd
    assert estimate(x86, _pricing()).cpu_architecture == "x86_64"


def test_billing_is_per_second_after_the_first_minute(aws, ecs):
    task = _stopped_task(aws, ecs, launchType="FARGATE")
    stopped = datetime.fromisoformat(task["stoppedAt"])

    def billed(seconds: float) -> int:
        pulled = {**task, "pullStartedAt": (stopped - timedelta(seconds=seconds)).isoformat()}
        return estimate(pulled, _pricing()).billed_seconds

    assert [billed(12), billed(59.9), billed(60.2), billed(90.4)] == [60, 60, 61, 91]
    never_started = {**task, "pullStartedAt": None, "startedAt": None}
    assert estimate(never_started, _pricing()) is None, "a task that never pulled its image costs nothing"
    assert estimate({**task, "cpu": "1 vCPU"}, _pricing()) is None, "a description it cannot read: no figure"


@pytest.mark.parametrize(
    ("placement", "capacity"),
    [
        ({"capacityProviderStrategy": [{"capacityProvider": "ec2-spot"}]}, "ec2_spot"),
        ({"launchType": "EC2"}, "ec2"),
    ],
    ids=["ec2 spot capacity provider", "ec2 launch type"],
)
def test_ec2_is_capacity_unless_the_environment_prices_its_vcpus(aws, ecs, placement, capacity):
    task = _stopped_task(aws, ecs, **placement)

    unpriced, priced = estimate(task, _pricing()), estimate(task, _pricing(EC2_VCPU_HOUR))

    assert (unpriced.capacity, unpriced.usd) == (capacity, None)
    assert unpriced.text().startswith("EC2 capacity (not priced)")
    spot = 1 - PRICES.spot_discount if capacity == "ec2_spot" else 1
    assert priced.usd == pytest.approx(MINUTE * 1 * EC2_VCPU_HOUR * spot)
