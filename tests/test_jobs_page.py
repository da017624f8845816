"""The Jobs page (``ecsjobs.ui.jobs_page``) from a real metadata DB: a job run twice with ``dag.test()``
against the local AWS, its row read back from the rendered page. The page behind the api-server's login, in
Chromium: ``tests/tier/test_tier_browser.py``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

from ecsjobs.catalog.loading import load_catalog
from ecsjobs.ui import jobs_page

QUICK = {"provisioning": 0.1, "pending": 0.1, "duration": 0.5, "stopping": 0.2}
JOB = "page_job"
EXTRA = "schedule: cron(0 6 ? * MON-FRI *)\nowner: analytics <b>ops</b>\ntags: [reports, daily]\n"
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


class _Cells(HTMLParser):
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


def test_a_jobs_row_shows_its_schedule_next_runs_last_run_success_and_cost(run_job, config_dir):
    run_job(JOB, QUICK, extra=EXTRA, retries=0)
    run_job(JOB, {**QUICK, "exit_code": 3}, extra=EXTRA, retries=0, times=1)
    catalog = load_catalog(config_dir, "local")

    runs = jobs_page.history({JOB}, datetime(2026, 1, 1, tzinfo=UTC))
    html = jobs_page.page(catalog, runs, NOW)

    assert [run.state for run in runs[JOB]] == ["success", "failed"]
    parser = _Cells()
    parser.feed(html)
    row = parser.rows[JOB]
    job, schedule, fires, launch, owner, tags, last, success, per_run, per_month, _ = (
        re.sub(r"\s+", " ", cell).strip() for cell in row["cells"]
    )
    assert job == f"{JOB} / Execution test job."
    assert "analytics &lt;b&gt;ops&lt;/b&gt;" in html, "the catalog's text is escaped, never markup"
    assert schedule == "cron(0 6 ? * MON-FRI *) / at 06:00, Monday through Friday (UTC)"
    assert fires.split("|")[:3] == ["2026-12-04 06:00 UTC", "2026-12-07 06:00 UTC", "2026-12-08 06:00 UTC"]
    assert (launch, owner, tags) == ("fargate", "analytics <b>ops</b>", "reportsdaily")
    assert last == "failed: application failure"
    assert success == "50%"
    cost = sum(run.cost for run in runs[JOB])
    assert per_run == f"${cost / 2:.4f}" and per_month == f"${cost:.2f}"
    assert row["links"] == [f"../dags/{JOB}"]
    assert [len(points) for points in row["charts"]] == [2, 2], "a duration and a cost chart of the 2 runs"


def test_a_job_without_runs_or_schedule_still_has_its_row():
    catalog = load_catalog(None, "local")

    parser = _Cells()
    parser.feed(jobs_page.page(catalog, {}, NOW))

    assert sorted(parser.rows) == sorted(catalog.jobs)
    manual = [re.sub(r"\s+", " ", c).strip() for c in parser.rows["backfill_reprocess"]["cells"]]
    assert manual[1] == "manual / never: manual and backfill runs only"
    assert (manual[2], manual[6], manual[7], manual[8]) == ("-", "no run yet", "-", "-")
    assert parser.rows["backfill_reprocess"]["charts"] == []
