"""``python -m ecsjobs prices --refresh``: the pinned prices re-read from AWS's Price List.

It reads the AWS Price List bulk file of the AmazonECS offer (public, one per region) and rewrites the regions
it read in ``config/prices.yaml``; the other regions stay as they were.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from ecsjobs.catalog.loading import load_prices
from ecsjobs.catalog.prices import PRICES_FILE, Prices, Rates, RegionPrices

BULK_URL = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonECS/current/{region}/index.json"
_REGION_PREFIX = re.compile(r"^[A-Z]+[0-9]*-")  # "USE1-", "EU-", "APS2-"
# The usage types (after their region prefix) of the Fargate rates, Linux.
USAGE_TYPES = {
    ("x86_64", "vcpu_hour"): "Fargate-vCPU-Hours:perCPU",
    ("x86_64", "gb_hour"): "Fargate-GB-Hours",
    ("arm64", "vcpu_hour"): "Fargate-ARM-vCPU-Hours:perCPU",
    ("arm64", "gb_hour"): "Fargate-ARM-GB-Hours",
    ("storage", "gb_hour"): "Fargate-EphemeralStorage-GB-Hours",
}


def bulk_rates(offer: dict[str, Any], region: str) -> RegionPrices:
    """A region's Fargate rates from the AmazonECS offer file of the AWS Price List (bulk JSON)."""
    by_usage = {
        _REGION_PREFIX.sub("", product.get("attributes", {}).get("usagetype", "")): sku
        for sku, product in offer.get("products", {}).items()
    }
    figures: dict[tuple[str, str], float] = {}
    for key, usage in USAGE_TYPES.items():
        sku = by_usage.get(usage)
        if sku is None:
            raise ValueError(f"the price list of {region} has no {usage} product")
        (term,) = offer["terms"]["OnDemand"][sku].values()
        (dimension,) = term["priceDimensions"].values()
        figures[key] = float(dimension["pricePerUnit"]["USD"])
    return RegionPrices(
        x86_64=Rates(vcpu_hour=figures["x86_64", "vcpu_hour"], gb_hour=figures["x86_64", "gb_hour"]),
        arm64=Rates(vcpu_hour=figures["arm64", "vcpu_hour"], gb_hour=figures["arm64", "gb_hour"]),
        storage_gb_hour=figures["storage", "gb_hour"],
        source=f"AWS Price List, AmazonECS offer {offer.get('version', '?')}",
        as_of=date.fromisoformat(str(offer.get("publicationDate", ""))[:10]),
    )


def read_offer(location: str) -> dict[str, Any]:
    """A bulk offer file from a URL or a local path (a copy made where the price list is reachable)."""
    if location.startswith(("https://", "http://")):
        with urllib.request.urlopen(location, timeout=60) as response:  # noqa: S310 (a price list URL)
            offer: dict[str, Any] = json.load(response)
            return offer
    offer = json.loads(Path(location).read_text(encoding="utf-8"))
    return dict(offer)


HEADER = """\
# yaml-language-server: $schema=schema/prices.schema.json
# What the cost estimates use: Fargate's on-demand prices per region (Linux), and how much Spot saves.
# Refresh from the AWS Price List (the public AmazonECS bulk offer files), per region:
#   .venv/bin/python -m ecsjobs prices --refresh --region us-east-1 [--offer FILE_OR_URL]
# spot_discount is an estimate: Spot prices move; AWS states up to 70% off for Fargate Spot.
"""


def refresh_command(directory: Path, regions: list[str], offer: str | None) -> int:
    """Rewrite ``prices.yaml`` with each region's rates read from its bulk offer file; other regions stay."""
    path = directory / PRICES_FILE
    current = load_prices(directory)
    updated = dict(current.regions) if current else {}
    for region in regions:
        location = offer or BULK_URL.format(region=region)
        try:
            updated[region] = bulk_rates(read_offer(location), region)
        except (OSError, ValueError, KeyError) as error:
            print(f"error: cannot read the prices of {region} from {location}: {error}", file=sys.stderr)
            return 1
        print(f"{region}: {_summary(updated[region])}")
    prices = Prices(spot_discount=current.spot_discount if current else 0.7, regions=updated)
    document = prices.model_dump(mode="json", exclude_defaults=True)
    path.write_text(HEADER + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    print(f"wrote {path}")
    return 0


def _summary(prices: RegionPrices) -> str:
    x86, arm = prices.x86_64, prices.arm64
    return (
        f"x86_64 {x86.vcpu_hour}/vCPU-h {x86.gb_hour}/GB-h, arm64 {arm.vcpu_hour}/vCPU-h {arm.gb_hour}/GB-h, "
        f"storage {prices.storage_gb_hour}/GB-h (as of {prices.as_of})"
    )
