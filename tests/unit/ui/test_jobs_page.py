"""The Jobs page (``ecsjobs.ui.jobs_page``) rendered from the shipped catalog alone, and the parser of its
rows the other page tests read it with (``tests/integration/test_jobs_page.py``: from a real metadata DB)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

from ecsjobs.catalog.loading import load_catalog
from ecsjobs.ui import jobs_page

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


class Cells(HTMLParser):
    """The text of each cell of each ``<tr data-job=...>``, and the row's links and chart points."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, list]] = {}
        self.row: dict[str, list] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "tr" and "data-job" in attributes:
            self.row = self.rows[attributes["data-job"]] = {"cells": [], "links": [], "charts": []}
        elif self.row is not None and tag == "td":
            self.row["cells"].append("")
        elif self.row is not None and tag == "a":
            self.row["links"].append(attributes["href"])
        elif self.row is not None and tag == "polyline":
            self.row["charts"].append(attributes["points"].split())
        elif self.row is not None and tag == "br":
            self.row["cells"][-1] += "|"
        elif self.row is not None and tag == "div":  # a line under the cell's first
            self.row["cells"][-1] += " / "

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.row is not None and self.row["cells"]:
            self.row["cells"][-1] += data


def test_a_job_without_runs_or_schedule_still_has_its_row():
    catalog = load_catalog(None, "local")

    parser = Cells()
    parser.feed(jobs_page.page(catalog, {}, NOW))

    assert sorted(parser.rows) == sorted(catalog.jobs)
    manual = [re.sub(r"\s+", " ", c).strip() for c in parser.rows["backfill_reprocess"]["cells"]]
    assert manual[1] == "manual / never: manual and backfill runs only"
    assert (manual[2], manual[6], manual[7], manual[8]) == ("-", "no run yet", "-", "-")
    assert parser.rows["backfill_reprocess"]["charts"] == []
