"""The prices file (``config/prices.yaml``, ``ecsjobs.catalog.prices``): a mistake is named with its file,
line and column as every catalog mistake is."""

from __future__ import annotations

from ecsjobs.cli.main import main
from tests.support import copied_config


def test_a_mistake_in_the_prices_file_is_named_with_its_line(tmp_path, capsys):
    config = copied_config(tmp_path)
    prices = config / "prices.yaml"
    prices.write_text(prices.read_text().replace("spot_discount: 0.7", "spot_discount: 1.5"))

    assert main(["validate", str(config)]) == 1

    out = capsys.readouterr()
    assert f"{prices}:6:16: spot_discount: " in out.out + out.err, out
