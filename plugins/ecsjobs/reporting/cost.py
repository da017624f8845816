"""What one ECS task is estimated to have cost: what it used, where it ran and how long it was billed, at the
pinned prices of ``config/prices.yaml`` (``ecsjobs.catalog.prices``).

Fargate bills the task's vCPU and memory, and its ephemeral storage beyond the included 20 GiB, per second
from the start of its image pull until it stops, with a one-minute minimum. Fargate Spot and EC2 Spot are the
on-demand figure less the Spot discount (an estimate). EC2 capacity is paid for by the instance, not the task:
a task on it is priced only when the environment gives ``ec2_vcpu_hour`` (its share by vCPU), otherwise it is
reported as EC2 capacity, with no figure.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

from ecsjobs.catalog.environment import Environment
from ecsjobs.catalog.prices import Prices
from ecsjobs.ecs import EcsTask, moment

log = logging.getLogger(__name__)

INCLUDED_STORAGE_GIB = 20
MINIMUM_BILLED_SECONDS = 60
DEFAULT_ARCHITECTURE = "x86_64"
_LAUNCH_TYPES = {"FARGATE": "fargate", "EC2": "ec2"}
_FARGATE_PROVIDERS = {"FARGATE": "fargate", "FARGATE_SPOT": "fargate_spot"}


def pricing_for(prices: Prices | None, env: Environment) -> dict[str, Any] | None:
    """What a step's operator carries to price its runs (plain data); None when the region has no prices."""
    region = prices.regions.get(env.region) if prices else None
    if prices is None or region is None:
        return None
    return {
        "region": env.region,
        "rates": {arch: getattr(region, arch).model_dump() for arch in ("x86_64", "arm64")},
        "storage_gb_hour": region.storage_gb_hour,
        "spot_discount": prices.spot_discount,
        "ec2_vcpu_hour": env.ec2_vcpu_hour,
        "ec2_spot_capacity_provider": env.ec2_spot_capacity_provider,
    }


@dataclass(frozen=True)
class Estimate:
    """One task's estimate; ``usd`` is None for EC2 capacity without a price."""

    usd: float | None
    on_demand_usd: float | None  # the same run on demand: what Spot saved is the difference
    capacity: str  # fargate, fargate_spot, ec2, ec2_spot
    billed_seconds: int
    vcpu: float
    memory_gb: float
    cpu_architecture: str

    def fields(self) -> dict[str, Any]:
        """For the audit record: flat, ``estimated_cost`` in USD."""
        data = asdict(self)
        data["estimated_cost"] = data.pop("usd")
        data["on_demand_cost"] = data.pop("on_demand_usd")
        return data

    def text(self) -> str:
        """For an alert: the figure and what it is made of."""
        figure = f"${self.usd:.4f} (estimate)" if self.usd is not None else "EC2 capacity (not priced)"
        size = f"{self.vcpu:g} vCPU, {self.memory_gb:g} GB, {self.cpu_architecture}"
        return f"{figure}\n{size}, {self.billed_seconds} s billed on {self.capacity}"


def estimate(
    task: EcsTask | None,
    pricing: dict[str, Any] | None,
    architecture: str | None = None,
    storage_gib: float | None = None,
) -> Estimate | None:
    """The estimate for a stopped task as DescribeTasks (or its event) shows it; None without prices, when it
    never started pulling, or when its description cannot be read (an estimate never fails a step).
    ``architecture`` and ``storage_gib`` are the task definition's, used when the task does not say (the
    task's own ``ecs.cpu-architecture`` attribute and ``ephemeralStorage`` win)."""
    if not task or not pricing or not task.get("stoppedAt"):
        return None
    try:
        return _estimate(task, pricing, architecture, storage_gib)
    except (ArithmeticError, KeyError, TypeError, ValueError) as error:
        log.warning("No cost estimate for %s: %r", task.get("taskArn"), error)
        return None


def _estimate(
    task: EcsTask, pricing: dict[str, Any], architecture: str | None, storage_gib: float | None
) -> Estimate | None:
    started = task.get("pullStartedAt") or task.get("startedAt")
    if not started or not task.get("cpu") or not task.get("memory"):
        return None
    seconds = (moment(task["stoppedAt"]) - moment(started)).total_seconds()
    billed = max(MINIMUM_BILLED_SECONDS, math.ceil(seconds))
    vcpu, memory_gb = int(task["cpu"]) / 1024, int(task["memory"]) / 1024
    arch = _architecture(task) or architecture or DEFAULT_ARCHITECTURE
    storage = (task.get("ephemeralStorage") or {}).get("sizeInGiB") or storage_gib or INCLUDED_STORAGE_GIB
    capacity = capacity_used(task, pricing["ec2_spot_capacity_provider"])
    hours = billed / 3600
    if capacity in ("fargate", "fargate_spot"):
        rates = pricing["rates"].get(arch) or pricing["rates"][DEFAULT_ARCHITECTURE]
        extra_storage = max(0.0, float(storage) - INCLUDED_STORAGE_GIB) * pricing["storage_gb_hour"]
        on_demand = hours * (vcpu * rates["vcpu_hour"] + memory_gb * rates["gb_hour"] + extra_storage)
    elif pricing.get("ec2_vcpu_hour"):
        on_demand = hours * vcpu * pricing["ec2_vcpu_hour"]
    else:
        on_demand = None
    spot = capacity.endswith("_spot")
    usd = on_demand * (1 - pricing["spot_discount"]) if on_demand is not None and spot else on_demand
    return Estimate(
        usd=usd,
        on_demand_usd=on_demand,
        capacity=capacity,
        billed_seconds=billed,
        vcpu=vcpu,
        memory_gb=memory_gb,
        cpu_architecture=arch,
    )


def capacity_used(task: EcsTask, ec2_spot_capacity_provider: str) -> str:
    """Where the task ran, from its capacity provider (or launch type): the launch names of the catalog."""
    provider = task.get("capacityProviderName")
    if provider in _FARGATE_PROVIDERS:
        return _FARGATE_PROVIDERS[provider]
    if provider:
        return "ec2_spot" if provider == ec2_spot_capacity_provider else "ec2"
    return _LAUNCH_TYPES.get(task.get("launchType") or "EC2", "ec2")


def _architecture(task: EcsTask) -> str | None:
    for attribute in task.get("attributes") or []:
        if attribute.get("name") == "ecs.cpu-architecture":
            return str(attribute["value"]) if attribute.get("value") is not None else None
    return None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
