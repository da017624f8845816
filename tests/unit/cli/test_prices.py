"""``prices --refresh`` (``ecsjobs.cli.prices``): the prices file rewritten from an AWS Price List offer file
(a cut-down copy in that format; the live URL is not reachable here)."""

from __future__ import annotations

from ecsjobs.catalog.loading import load_catalog, load_prices
from ecsjobs.cli.main import main
from local.settings import REPO
from tests.support import copied_config

PRICES = load_prices(REPO / "config")


def test_refresh_rewrites_the_regions_read_from_the_price_list(tmp_path, capsys):
    config = copied_config(tmp_path)
    offer = REPO / "tests" / "data" / "amazonecs-offer-us-east-1.json"

    code = main(
        ["--config", str(config), "prices", "--refresh", "--region", "us-east-1", "--offer", str(offer)]
    )

    assert code == 0, capsys.readouterr()
    refreshed = load_prices(config)
    east = refreshed.regions["us-east-1"]
    assert (east.x86_64.vcpu_hour, east.x86_64.gb_hour, east.arm64.vcpu_hour, east.arm64.gb_hour) == (
        0.05,
        0.005,
        0.04,
        0.004,
    ), "Windows and Spot usage types are not Linux on-demand rates"
    assert (east.storage_gb_hour, str(east.as_of)) == (0.0002, "2026-11-01")
    assert "AmazonECS offer 20261101000000" in east.source
    assert refreshed.regions["us-west-2"] == PRICES.regions["us-west-2"], "regions not read stay"
    assert refreshed.spot_discount == PRICES.spot_discount
    assert load_catalog(config, "local").prices == refreshed, "the catalog still loads"


def test_refresh_fails_on_a_price_list_without_the_fargate_rates(tmp_path, capsys):
    config = copied_config(tmp_path)
    (tmp_path / "offer.json").write_text('{"products": {}, "terms": {"OnDemand": {}}}')
    before = (config / "prices.yaml").read_text()

    code = main(
        [
            "--config",
            str(config),
            "prices",
            "--refresh",
            "--region",
            "us-east-1",
            "--offer",
            str(tmp_path / "offer.json"),
        ]
    )

    assert code == 1
    assert "has no Fargate-vCPU-Hours:perCPU product" in capsys.readouterr().err
    assert (config / "prices.yaml").read_text() == before, "nothing is written"
