"""The fleet report: per job, how its runs went over the last days and what they cost, from the audit log,
with the advice a platform engineer would act on, each with its evidence.

The audit records are read with CloudWatch Logs Insights over the audit group (``fields @message``, at most
10,000 rows a query: a full answer is read again in two halves) and aggregated here, so the query only
selects them. A step run is the record of its final try; earlier tries count for the Spot figures and cost.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ecsjobs import aws
from ecsjobs.catalog.loading import Catalog
from ecsjobs.catalog.models import SPOT_LAUNCHES, Step

MAX_ROWS = 10_000  # Logs Insights' most rows per query
QUERY_TIMEOUT = 120.0
MONTH_DAYS = 30
# When advice is given: enough runs to say anything, and how far off a setting must be.
MIN_RUNS = 5
TIMEOUT_OVER_P95 = 4.0  # a timeout this many times the p95 duration lets a hung task run that long
EXPECTED_BAND = (0.5, 1.5)  # p50 outside this share of expected_duration: the setting no longer matches
REPEATED_OOM = 2


@dataclass
class StepReport:
    job: str
    step: str
    step_runs: int
    outcomes: dict[str, int]
    success_rate: float | None
    p50_seconds: float | None
    p95_seconds: float | None
    expected_seconds: float | None
    timeout_seconds: float | None
    spot_tries: int
    spot_interruption_rate: float | None
    fallback_share: float | None
    advice: list[str] = field(default_factory=list)


@dataclass
class JobReport:
    job: str
    runs: int
    success_rate: float | None
    cost: float | None  # USD over the window, every try
    cost_per_run: float | None
    cost_per_month: float | None
    spot_saved: float | None
    unpriced_tries: int  # EC2 capacity without a price, or no estimate
    in_catalog: bool
    steps: list[StepReport]


def audit_records(
    client: Any, group: str, start: datetime, end: datetime, job: str | None = None
) -> list[dict[str, Any]]:
    """The audit records written between ``start`` and ``end`` (of ``job`` only, if given)."""
    query = "fields @timestamp, @message"
    if job:
        query += f"\n| filter job = {json.dumps(job)}"
    query += f"\n| sort @timestamp asc\n| limit {MAX_ROWS}"
    rows = aws.logs_insights(client, group, query, start, end, QUERY_TIMEOUT)
    if len(rows) >= MAX_ROWS and end - start > timedelta(seconds=2):
        middle = start + (end - start) / 2
        earlier = audit_records(client, group, start, middle, job)
        return earlier + audit_records(client, group, middle, end, job)
    records = []
    for row in rows:
        try:
            record = json.loads(row.get("@message", ""))
        except ValueError:
            continue
        if isinstance(record, dict) and "job" in record and (job is None or record["job"] == job):
            records.append(record)
    return records


def build(records: list[dict[str, Any]], catalog: Catalog, days: int) -> list[JobReport]:
    """The report of every job with records in the window, in job order."""
    by_job: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_job.setdefault(record["job"], []).append(record)
    return [_job(job, by_job[job], catalog, days) for job in sorted(by_job)]


def _job(job: str, records: list[dict[str, Any]], catalog: Catalog, days: int) -> JobReport:
    spec = catalog.jobs.get(job)
    finals = [r for r in records if r.get("final")]
    costs = [r["estimated_cost"] for r in records if r.get("estimated_cost") is not None]
    runs = len({r.get("run_id") for r in finals})
    total = sum(costs) if costs else None
    saved = [r["on_demand_cost"] - r["estimated_cost"] for r in records if _priced_spot(r)]
    by_step: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_step.setdefault(record.get("step", "run"), []).append(record)
    steps = [
        _step(job, step, by_step[step], spec.steps.get(step) if spec else None) for step in sorted(by_step)
    ]
    return JobReport(
        job=job,
        runs=runs,
        success_rate=_share(sum(r.get("outcome") == "succeeded" for r in finals), len(finals)),
        cost=total,
        cost_per_run=total / runs if total is not None and runs else None,
        cost_per_month=total * MONTH_DAYS / days if total is not None else None,
        spot_saved=sum(saved) if saved else None,
        unpriced_tries=len(records) - len(costs),
        in_catalog=spec is not None,
        steps=steps,
    )


def _step(job: str, step: str, records: list[dict[str, Any]], settings: Step | None) -> StepReport:
    finals = [r for r in records if r.get("final")]
    succeeded = [r for r in finals if r.get("outcome") == "succeeded"]
    durations = sorted(r["duration_seconds"] for r in succeeded if r.get("duration_seconds") is not None)
    spot = [r for r in records if _on_spot(r)]
    lost = [r for r in spot if r.get("outcome") == "infrastructure_loss"]
    report = StepReport(
        job=job,
        step=step,
        step_runs=len(finals),
        outcomes=dict(Counter(r.get("outcome") or "unknown" for r in finals).most_common()),
        success_rate=_share(len(succeeded), len(finals)),
        p50_seconds=_percentile(durations, 50),
        p95_seconds=_percentile(durations, 95),
        expected_seconds=_seconds(settings.expected_duration) if settings else None,
        timeout_seconds=_seconds(settings.timeout) if settings else None,
        spot_tries=len(spot),
        spot_interruption_rate=_share(len(lost), len(spot)),
        fallback_share=_share(sum(bool(r.get("fallback")) for r in finals), len(finals)),
    )
    report.advice = _advice(report, records, succeeded, settings)
    return report


def _advice(
    report: StepReport, records: list[dict[str, Any]], succeeded: list[dict[str, Any]], settings: Step | None
) -> list[str]:
    advice = []
    p50, p95 = report.p50_seconds, report.p95_seconds
    enough = len(succeeded) >= MIN_RUNS
    timeout = report.timeout_seconds
    if enough and timeout and p95 and timeout > TIMEOUT_OVER_P95 * p95:
        advice.append(
            f"lower timeout: {_duration(timeout)} is {timeout / p95:.0f}x the p95 duration {_duration(p95)} "
            f"of {len(succeeded)} successful runs, so a hung task runs that long before it is stopped; "
            f"about {_duration(_minutes_up(2 * p95))} would do"
        )
    expected = report.expected_seconds
    if enough and expected and p50 and not EXPECTED_BAND[0] <= p50 / expected <= EXPECTED_BAND[1]:
        advice.append(
            f"update expected_duration: {_duration(expected)}, but runs take {_duration(p50)} (p50) to "
            f"{_duration(p95)} (p95) over {len(succeeded)} runs; the late alert and the duration alarm's "
            f"fallback use it; about {_duration(_minutes_up(p95 or p50))} would do"
        )
    advice += _spot_advice(records)
    oom = [r for r in records if r.get("outcome") == "out_of_memory"]
    if len(oom) >= REPEATED_OOM:
        memory = f"{settings.memory} MiB" if settings and settings.memory else "the task definition's"
        runs = ", ".join(sorted({str(r.get("run_id")) for r in oom})[:3])
        advice.append(
            f"raise memory: {len(oom)} tries ended out of memory (runs {runs}); the step asks for {memory}"
        )
    first_tries = [r for r in records if r.get("try_number") == 1]
    if len(succeeded) >= 3 and all((r.get("try_number") or 1) > 1 for r in succeeded):
        failures = Counter(r.get("outcome") for r in first_tries if r.get("outcome") != "succeeded")
        seen = ", ".join(f"{count} {outcome}" for outcome, count in failures.most_common()) or "none recorded"
        advice.append(
            f"every one of {len(succeeded)} successes came on a retry: look at the first tries ({seen}); "
            "a retry that always works hides a cause (a dependency not ready, a start-up race)"
        )
    return advice


def _spot_advice(records: list[dict[str, Any]]) -> list[str]:
    """On demand is cheaper once the Spot tries lost to interruptions are paid for too."""
    spot = [r for r in records if _on_spot(r) and r.get("estimated_cost") is not None]
    done = [r for r in spot if r.get("outcome") != "infrastructure_loss" and r.get("on_demand_cost")]
    if len(spot) < MIN_RUNS or not done:
        return []
    lost = len(spot) - len(done)
    spot_cost = sum(r["estimated_cost"] for r in spot)
    on_demand = sum(r["on_demand_cost"] for r in done)
    if spot_cost < on_demand:
        return []
    return [
        f"run on demand: {lost} of {len(spot)} Spot tries were interrupted ({lost / len(spot):.0%}); with "
        f"the lost tries paid for, Spot cost {_money(spot_cost)} where the same runs on demand cost "
        f"{_money(on_demand)}"
    ]


def _on_spot(record: dict[str, Any]) -> bool:
    capacity = record.get("capacity") or ("on_demand" if record.get("fallback") else record.get("launch"))
    return capacity in SPOT_LAUNCHES


def _priced_spot(record: dict[str, Any]) -> bool:
    return _on_spot(record) and None not in (record.get("estimated_cost"), record.get("on_demand_cost"))


def _percentile(values: list[float], percent: int) -> float | None:
    """Nearest rank: a duration some run actually took."""
    if not values:
        return None
    return values[max(0, math.ceil(percent / 100 * len(values)) - 1)]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value else None


def _minutes_up(seconds: float) -> float:
    return math.ceil(seconds / 60) * 60


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def text(reports: list[JobReport], days: int) -> str:
    lines = [f"Fleet report: the last {days} days"]
    for job in reports:
        where = "" if job.in_catalog else " (not in the catalog)"
        lines.append("")
        unpriced = f" ({job.unpriced_tries} tries not priced)" if job.unpriced_tries else ""
        lines.append(
            f"{job.job}{where}: {job.runs} runs, {_percent(job.success_rate)} of step runs succeeded; cost "
            f"{_money(job.cost_per_run)} a run, {_money(job.cost_per_month)} a month, Spot saved "
            f"{_money(job.spot_saved)}{unpriced}"
        )
        for step in job.steps:
            outcomes = ", ".join(f"{count} {outcome}" for outcome, count in step.outcomes.items())
            lines.append(f"  {step.step}: {step.step_runs} step runs: {outcomes or 'no result'}")
            p50, p95 = _duration(step.p50_seconds), _duration(step.p95_seconds)
            lines.append(
                f"    duration p50 {p50}, p95 {p95}; expected {_duration(step.expected_seconds)}, "
                f"timeout {_duration(step.timeout_seconds)}"
            )
            if step.spot_tries:
                interrupted, fallback = _percent(step.spot_interruption_rate), _percent(step.fallback_share)
                lines.append(
                    f"    Spot: {step.spot_tries} tries, {interrupted} interrupted; {fallback} of step runs "
                    "fell back to on demand"
                )
            lines += [f"    advice: {advice}" for advice in step.advice]
    if not reports:
        lines.append("no audit records in this window")
    return "\n".join(lines)


def report_command(catalog: Catalog, days: int, job: str | None, as_json: bool) -> int:
    env = catalog.environment
    if job is not None and job not in catalog.jobs:
        print(f"note: {job} is not in the catalog; reporting its audit records anyway", file=sys.stderr)
    end = datetime.now(UTC)
    with contextlib.redirect_stdout(sys.stderr):  # Airflow's log lines (reading the connection): not output
        client = aws.client("logs", env.aws_conn_id, env.region)
        records = audit_records(client, env.audit_log_group, end - timedelta(days=days), end, job)
    reports = build(records, catalog, days)
    if as_json:
        print(json.dumps({"days": days, "jobs": [asdict(r) for r in reports]}, indent=2))
    else:
        print(text(reports, days))
    return 0
