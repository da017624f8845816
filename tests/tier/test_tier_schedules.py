"""Runs nobody triggered by hand: a schedule firing at its cron time, and backfills of missed days.

Backfills are created as users create them, with ``airflow backfill create`` and ``POST /api/v2/backfills``,
and run by the real scheduler; what each ECS task received is read back from the local AWS.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.tier.harness import FINISHED, Tier, environment, tag

pytestmark = pytest.mark.tier


def test_a_scheduled_job_fires_on_its_own_at_its_cron_time(tier: Tier):
    dag_id = "tier_every_minute"  # cron(* * * * ? *)
    unpaused_at = datetime.now(UTC)
    tier.unpause(dag_id)
    try:
        run = tier.wait(lambda: _scheduled_run_after(tier, dag_id, unpaused_at), 150, "a run at a cron time")
        run = tier.wait_for_run(dag_id, run["dag_run_id"])
    finally:
        tier.pause(dag_id)

    assert run["state"] == "success"
    logical_date = datetime.fromisoformat(run["logical_date"])
    assert (logical_date.second, logical_date.microsecond) == (0, 0)  # a cron time: the top of a minute
    fired_after = datetime.fromisoformat(run["queued_at"]) - logical_date
    assert timedelta(0) <= fired_after < timedelta(seconds=30), "the scheduler fired it at its time"
    (task,) = tier.ecs_tasks(dag_id, "run", run["dag_run_id"])
    assert environment(task)["FIRED_FOR"] == logical_date.isoformat()
    assert task["lastStatus"] == "STOPPED"


def _scheduled_run_after(tier: Tier, dag_id: str, moment: datetime) -> dict | None:
    """The first run the schedule made for a cron time after ``moment``; unpausing also makes one at once
    for the latest time already passed (``catchup: false``), which does not count here."""
    runs = tier.api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?run_type=scheduled&order_by=logical_date")
    later = [r for r in runs["dag_runs"] if datetime.fromisoformat(r["logical_date"]) > moment]
    return later[0] if later else None


def test_a_cli_backfill_runs_every_missed_day_with_its_own_date(tier: Tier):
    dag_id = "data_processor"  # cron(0 2 * * ? *), JOB_DATE: "{{ ds }}"
    tier.unpause(dag_id)
    output = tier.airflow(
        "backfill", "create", "--dag-id", dag_id, "--from-date", "2026-03-01", "--to-date", "2026-03-03T23:59"
    )
    assert dag_id in output

    runs = _finished_runs(tier, dag_id, "2026-03-01", "2026-03-04", count=3)
    assert [(r["logical_date"][:19], r["state"]) for r in runs] == [
        ("2026-03-01T02:00:00", "success"),
        ("2026-03-02T02:00:00", "success"),
        ("2026-03-03T02:00:00", "success"),
    ]
    dates = [_job_dates(tier, dag_id, run) for run in runs]
    assert dates == [["2026-03-01"], ["2026-03-02"], ["2026-03-03"]]  # one ECS task per day, its own date


def test_a_rest_backfill_reprocesses_only_its_failed_day(tier: Tier):
    dag_id = "tier_daily"  # cron(0 2 * * ? *), JOB_DATE: "{{ ds }}"
    tier.unpause(dag_id)
    tier.scenario({"env": {"JOB_DATE": "2026-04-02"}}, {"exit_code": 3}, times=1)  # that day fails once
    body = {"dag_id": dag_id, "from_date": "2026-04-01T00:00:00Z", "to_date": "2026-04-03T23:59:00Z"}
    first = tier.backfill({**body, "max_active_runs": 3})

    runs = _finished_runs(tier, dag_id, "2026-04-01", "2026-04-04", count=3)
    assert [r["state"] for r in runs] == ["success", "failed", "success"]
    assert [_job_dates(tier, dag_id, run) for run in runs] == [["2026-04-01"], ["2026-04-02"], ["2026-04-03"]]
    # One backfill per DAG at a time: the scheduler marks it complete on its own (every 30 s).
    path = f"/api/v2/backfills/{first['id']}"
    tier.wait(lambda: tier.api.call("GET", path)["completed_at"], 90, "the backfill to complete")

    tier.backfill({**body, "reprocess_behavior": "failed"})

    runs = _finished_runs(tier, dag_id, "2026-04-01", "2026-04-04", count=3)
    assert [r["state"] for r in runs] == ["success", "success", "success"]
    # Only the failed day ran again (a second try of the same run); the others kept their one ECS task.
    assert [_job_dates(tier, dag_id, run) for run in runs] == [
        ["2026-04-01"],
        ["2026-04-02", "2026-04-02"],
        ["2026-04-03"],
    ]
    failed_day = tier.ecs_tasks(dag_id, "run", runs[1]["dag_run_id"])
    assert [tag(t, "ecsjobs:try") for t in failed_day] == ["1", "2"]


def _finished_runs(tier: Tier, dag_id: str, start: str, end: str, count: int) -> list[dict]:
    """The ``count`` backfill runs with logical dates in [start, end), once none is queued or running."""
    path = (
        f"/api/v2/dags/{dag_id}/dagRuns?run_type=backfill&logical_date_gte={start}T00:00:00Z"
        f"&logical_date_lt={end}T00:00:00Z&order_by=logical_date"
    )

    def finished() -> list[dict] | None:
        runs = tier.api.call("GET", path)["dag_runs"]
        return runs if len(runs) == count and all(r["state"] in FINISHED for r in runs) else None

    return tier.wait(finished, 180, f"{count} backfill runs of {dag_id} to finish")


def _job_dates(tier: Tier, dag_id: str, run: dict) -> list[str]:
    """The JOB_DATE each ECS task of the run's one step received, oldest first."""
    return [environment(task)["JOB_DATE"] for task in tier.ecs_tasks(dag_id, "run", run["dag_run_id"])]
