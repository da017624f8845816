"""The Jobs page (``ecsjobs.ui.jobs_page``) from a real metadata DB: a job run twice with ``dag.test()``
against the local AWS, its row read back from the rendered page. The page behind the api-server's login, in
Chromium: ``tests/tier/test_tier_browser.py``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ecsjobs.catalog.loading import load_catalog
from ecsjobs.ui import jobs_page
from tests.unit.ui.test_jobs_page import Cells

QUICK = {"provisioning": 0.1, "pending": 0.1, "duration": 0.5, "stopping": 0.2}
JOB = "page_job"
EXTRA = "schedule: cron(0 6 ? * MON-FRI *)\nowner: analytics <b>ops</b>\ntags: [reports, daily]\n"
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


def test_a_jobs_row_shows_its_schedule_next_runs_last_run_success_and_cost(run_job, config_dir):
    run_job(JOB, QUICK, extra=EXTRA, retries=0)
    run_job(JOB, {**QUICK, "exit_code": 3}, extra=EXTRA, retries=0, times=1)
    catalog = load_catalog(config_dir, "local")

    runs = jobs_page.history({JOB}, datetime(2026, 1, 1, tzinfo=UTC))
    html = jobs_page.page(catalog, runs, NOW)

    assert [run.state for run in runs[JOB]] == ["success", "failed"]
    parser = Cells()
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
