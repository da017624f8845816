"""The pinned prices the cost estimates use (``config/prices.yaml``).

Prices are data, never code: each region's Fargate rates (per vCPU-hour and GB-hour, x86 and ARM, and
ephemeral storage per GB-hour) with the source and date they were read from, and one Spot discount factor,
an estimate since Spot prices move. ``python -m ecsjobs prices --refresh`` rewrites them
(``ecsjobs.cli.prices``).
"""

from __future__ import annotations

from datetime import date

from pydantic import Field

from ecsjobs.catalog.models import Strict

PRICES_FILE = "prices.yaml"


class Rates(Strict):
    """Fargate's on-demand rates for one CPU architecture, USD."""

    vcpu_hour: float = Field(gt=0, description="Per vCPU and hour.")
    gb_hour: float = Field(gt=0, description="Per GB of memory and hour.")


class RegionPrices(Strict):
    """One region's Fargate prices, Linux, USD."""

    x86_64: Rates = Field(description="Tasks on x86_64 (the default CPU architecture).")
    arm64: Rates = Field(description="Tasks on ARM64 (Graviton).")
    storage_gb_hour: float = Field(ge=0, description="Ephemeral storage past the free 20 GiB, per GB-hour.")
    source: str = Field(description="Where these figures were read.")
    as_of: date = Field(description="When these figures were read (the price list's publication date).")


class Prices(Strict):
    """``config/prices.yaml``: what a run is estimated to cost, per region."""

    currency: str = Field(default="USD", pattern="^USD$", description="The currency of every figure.")
    spot_discount: float = Field(
        ge=0,
        lt=1,
        description="Fraction Spot (Fargate Spot and EC2 Spot) saves against on demand: an estimate, since "
        "Spot prices move (AWS states up to 70% for Fargate Spot).",
    )
    regions: dict[str, RegionPrices] = Field(description="Fargate prices by AWS region code.")
