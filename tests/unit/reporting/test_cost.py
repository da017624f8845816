"""Cost per step run (``ecsjobs.reporting.cost``) where no price applies. The estimates of tasks that ran on
the local ECS: ``tests/integration/test_cost.py``."""

from __future__ import annotations

from ecsjobs.catalog.loading import load_catalog, load_prices
from ecsjobs.reporting.cost import estimate, pricing_for
from local.settings import REPO

PRICES = load_prices(REPO / "config")


def test_a_region_without_prices_estimates_nothing():
    env = load_catalog(REPO / "config", "local").environment.model_copy(update={"region": "eu-north-1"})

    assert pricing_for(PRICES, env) is None
    assert pricing_for(None, env) is None
    assert estimate({"stoppedAt": "2026-01-01T00:00:00+00:00"}, None) is None
