"""What a user does in the Airflow UI, in headless Chromium: log in, find the jobs, trigger one from its form,
open a finished step's links. Screenshots of each step go to ``tests/tier/output/airflow-<version>/browser/``.

Debian's ``chromium`` is driven by Playwright (``executable_path``: no browser download). The AWS console is
not reachable from here, so its pages are answered by a stand-in and the test checks which page a link opened.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tier.harness import Tier

pytestmark = pytest.mark.tier

CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
AWS_CONSOLE = re.compile(r"^https://console\.aws\.amazon\.com/")
JOBS = {  # shipped catalog jobs as a user sees them in the DAG list
    "report_generator": ["daily", "reports"],
    "etl_pipeline": ["daily", "etl"],
    "weekly_churn_model": ["ml", "weekly"],
}
DESCRIPTION = "Weekday customer reports: one report per customer, in the format the customer subscribed to."
PARAMS = {
    "report_type": "Level of detail of the reports.",
    "customers": "Customers to build reports for (one ECS task each).",
}


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get on first use: CI machines start without a browser."""
    if found := shutil.which("chromium"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium", "fonts-liberation"],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        assert result.returncode == 0, (
            f"{' '.join(command)} failed; the browser check needs Debian's chromium:\n{result.stderr[-3000:]}"
        )
    return shutil.which("chromium") or pytest.fail("apt-get installed chromium, but it is not on PATH")


@pytest.fixture
def page(chromium: str, tier: Tier) -> Iterator:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser check needs Playwright, pinned in lock/<lane>.txt: run `make install`")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=tier.stack.api_url, viewport={"width": 1400, "height": 1000})
        context.route(AWS_CONSOLE, _aws_console_stand_in)
        context.set_default_timeout(30_000)
        page = context.new_page()
        try:
            yield page
        finally:
            _screenshot(
                page, tier.output / "browser" / "last-page.png", "load"
            )  # where it stood, pass or fail
            browser.close()


def _until_listed(page, job: str, timeout: float = 180) -> None:
    """Reload the DAG list until it shows ``job``: on a loaded machine the list can come up before the DAG
    processor has stored the catalog's DAGs ("0 Dags"), and the page does not refresh by itself."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    link = page.get_by_role("link", name=job, exact=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            link.wait_for(timeout=15_000)
            return
        except PlaywrightTimeout:
            if time.monotonic() > deadline:
                raise
            page.reload()


def _aws_console_stand_in(route) -> None:
    route.fulfill(status=200, content_type="text/html", body="<title>AWS console (stand-in)</title>")


def test_a_user_finds_the_jobs_triggers_one_from_its_form_and_opens_a_step_link(tier: Tier, page):
    from playwright.sync_api import expect

    shots = tier.output / "browser"

    page.goto("/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Dags", exact=True).click()
    _until_listed(page, next(iter(JOBS)))

    for job, tags in JOBS.items():
        name = page.get_by_role("link", name=job, exact=True)
        expect(name).to_be_visible()
        listed = page.locator("div").filter(has=name).last  # the smallest block around the job's name
        for tag in tags:
            expect(listed.get_by_role("link", name=tag, exact=True)).to_be_visible()
    _screenshot(page, shots / "1-dags.png")

    page.get_by_role("link", name="report_generator", exact=True).click()
    page.get_by_role("link", name="Details", exact=True).click()  # the job's description is shown there
    expect(page.get_by_text(DESCRIPTION, exact=True)).to_be_visible()
    _screenshot(page, shots / "2-job-details.png")

    page.get_by_role("button", name="Trigger").click()
    form = page.get_by_role("dialog")
    expect(form.get_by_text("Trigger Dag - report_generator")).to_be_visible()
    for param, description in PARAMS.items():  # each parameter is a field with its description under it
        field = form.get_by_role("group").filter(has_text=description)
        expect(field).to_be_visible()
        expect(field).to_contain_text(param)
    customers = form.get_by_role("group").filter(has_text=PARAMS["customers"]).get_by_role("textbox")
    customers.fill("zeta\nomega")  # one customer per line, as the field's placeholder says
    _screenshot(page, shots / "3-trigger-form.png")
    before = {r["dag_run_id"] for r in _runs(tier)}
    form.get_by_role("button", name="Trigger").click()

    (run,) = tier.wait(lambda: [r for r in _runs(tier) if r["dag_run_id"] not in before], 30, "the run")
    assert run["conf"] == {"report_type": "summary", "customers": ["zeta", "omega"]}
    assert tier.wait_for_run("report_generator", run["dag_run_id"])["state"] == "success"
    tasks = [tier.ecs_tasks("report_generator", "each.run", run["dag_run_id"], i) for i in (0, 1)]
    commands = [" ".join(t["overrides"]["containerOverrides"][0]["command"]) for (t,) in tasks]
    assert [c.split("--customer ")[1].split()[0] for c in commands] == ["zeta", "omega"]
    (task,) = tasks[0]

    page.goto(f"/dags/report_generator/runs/{run['dag_run_id']}/tasks/each.run/mapped/0")
    page.get_by_role("link", name="Details", exact=True).click()  # the step's extra links are listed there
    expect(page.get_by_role("link", name="ECS task")).to_be_visible()
    _screenshot(page, shots / "4-finished-step.png")
    task_id = task["taskArn"].rsplit("/", 1)[1]
    assert _opened(page, "ECS task") == (
        f"https://console.aws.amazon.com/ecs/v2/clusters/batch-jobs/tasks/{task_id}/configuration"
        "?region=us-east-1"
    )
    logs_url = _opened(page, "CloudWatch logs")
    assert logs_url.startswith(
        "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups"
    )
    assert task_id in logs_url

    # The Jobs page: in the UI's navigation, one row per catalog job with the run just made, behind the login.
    page.goto("/")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="ECS jobs").click()
    jobs = page.frame_locator("iframe")
    row = jobs.locator('tr[data-job="report_generator"]')
    expect(row).to_contain_text("cron(0 6 ? * MON-FRI *)")
    expect(row).to_contain_text("Monday through Friday")
    expect(row.locator("td.last-run")).to_have_text("success")
    expect(row.locator("svg.cost polyline")).to_have_count(1)
    expect(jobs.locator("tr[data-job]")).to_have_count(
        len(list((Path(tier.stack.env["ECSJOBS_CONFIG_DIR"]) / "jobs").glob("*.yaml")))
    )
    _screenshot(page, shots / "5-jobs-page.png", settled="load")
    jobs.get_by_role("link", name="weekly_churn_model", exact=True).click()  # to the job's DAG, in the UI
    page.wait_for_url(re.compile(r"/dags/weekly_churn_model$"))
    anonymous = page.context.browser.new_context(base_url=tier.stack.api_url)
    try:
        assert anonymous.request.get("/ecsjobs/").status == 401, "the page is behind Airflow's login"
    finally:
        anonymous.close()


def _opened(page, link: str) -> str:
    """Click a link that opens a new tab; the address the tab loaded."""
    with page.expect_popup() as opened:
        page.get_by_role("link", name=link).click()
    tab = opened.value
    tab.wait_for_load_state()
    return tab.url


def _runs(tier: Tier) -> list[dict]:
    """The job's runs triggered by hand (unpausing it may also start its latest scheduled run)."""
    return tier.api.call("GET", "/api/v2/dags/report_generator/dagRuns?run_type=manual")["dag_runs"]


def _screenshot(page, path: Path, settled: str = "networkidle") -> None:
    """``settled="load"`` where the network never idles (Airflow 3.2's UI polls on a plugin's page)."""
    path.parent.mkdir(exist_ok=True)
    page.wait_for_load_state(settled)
    page.screenshot(path=path, full_page=True, animations="disabled")
