"""``python -m ecsjobs report``: the fleet report over an audit log seeded in the local AWS's CloudWatch Logs,
read with Logs Insights as on AWS (the local one honours ``fields``, ``sort`` and ``limit`` and ignores
``filter``, which the report does not rely on). Every piece of advice has a job that triggers it and one that
does not."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from ecsjobs.cli.main import main
from ecsjobs.reporting import fleet as report
from local.settings import REPO

HOUR_MS = 3_600_000
# job -> its catalog settings: a timeout near the runs' minute, or the default 2h would be advised against
JOBS = {
    "slow_timeout": "timeout: 2h\nexpected_duration: 1m\n",
    "tight": "timeout: 3m\nexpected_duration: 1m\n",
    "stale_expected": "timeout: 40m\nexpected_duration: 2m\n",
    "spot_bad": "launch: fargate_spot\ntimeout: 3m\n",
    "spot_ok": "launch: fargate_spot\ntimeout: 3m\n",
    "oom": "memory: 2048\ntimeout: 3m\n",
    "oom_once": "timeout: 3m\n",
    "flaky_start": "timeout: 3m\n",
    "mostly_first": "timeout: 3m\n",
}


def _record(job: str, run: int, try_number: int = 1, **fields: Any) -> dict[str, Any]:
    record = {
        "job": job,
        "step": "run",
        "map_index": -1,
        "run_id": f"scheduled__2026-11-{run + 1:02d}",
        "try_number": try_number,
        "final": True,
        "outcome": "succeeded",
        "duration_seconds": 60.0,
        "launch": "fargate",
        "capacity": "fargate",
        "fallback": False,
        "estimated_cost": 0.001,
        "on_demand_cost": 0.001,
    }
    return record | fields


def _spot(job: str, run: int, try_number: int, lost: bool) -> dict[str, Any]:
    outcome = {"outcome": "infrastructure_loss", "final": False} if lost else {}
    spot = {"launch": "fargate_spot", "capacity": "fargate_spot", "estimated_cost": 0.0003}
    return _record(job, run, try_number, **spot, **outcome)


def _records() -> list[dict[str, Any]]:
    records = [_record("slow_timeout", run) for run in range(6)]
    records += [_record("tight", run, duration_seconds=50.0 + run * 4) for run in range(6)]
    records += [_record("stale_expected", run, duration_seconds=600.0) for run in range(6)]
    for run in range(2):  # 4 interruptions before each success: 8 of 10 Spot tries lost
        records += [_spot("spot_bad", run, attempt, lost=attempt < 5) for attempt in range(1, 6)]
    records += [_spot("spot_ok", 0, 1, lost=True), _spot("spot_ok", 0, 2, lost=True)]
    records += [_spot("spot_ok", run, 1 if run else 3, lost=False) for run in range(8)]
    records += [_record("oom", run, 1, outcome="out_of_memory", final=False) for run in range(2)]
    records += [_record("oom", run, 2) for run in range(2)]
    records += [_record("oom_once", 0, 1, outcome="out_of_memory", final=False), _record("oom_once", 0, 2)]
    for run in range(3):
        records += [_record("flaky_start", run, 1, outcome="application_failure", final=False)]
        records += [_record("flaky_start", run, 2)]
    records += [_record("mostly_first", 0, 1, outcome="failed_to_start", final=False)]
    records += [_record("mostly_first", run, 2 if run == 0 else 1) for run in range(3)]
    return records


@pytest.fixture
def fleet(aws, tmp_path) -> Path:
    """A catalog of the jobs above whose audit group holds their records of the last days."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config, ignore=shutil.ignore_patterns("jobs"))
    (config / "jobs").mkdir()
    for job, settings in JOBS.items():
        (config / "jobs" / f"{job}.yaml").write_text(
            f"description: {job}\nstart_date: 2026-01-01\ntask_definition: data-processor\n"
            f"container: batch-container\n{settings}"
        )
    group = f"/batch-jobs/audit-{uuid.uuid4().hex[:8]}"
    local = config / "environments" / "local.yaml"
    local.write_text(
        local.read_text().replace("audit_log_group: /batch-jobs/audit", f"audit_log_group: {group}")
    )
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=group)
    start = int(time.time() * 1000) - 5 * 24 * HOUR_MS
    by_job: dict[str, list[dict[str, Any]]] = {}
    for index, record in enumerate(_records()):
        event = {"timestamp": start + index * 60_000, "message": json.dumps(record)}
        by_job.setdefault(record["job"], []).append(event)
    old = {
        "timestamp": start - 40 * 24 * HOUR_MS,
        "message": json.dumps(_record("tight", 99, outcome="timed_out")),
    }
    for job, events in by_job.items():
        logs.create_log_stream(logGroupName=group, logStreamName=job)
        logs.put_log_events(
            logGroupName=group, logStreamName=job, logEvents=([old] if job == "tight" else []) + events
        )
    return config


def _report(config: Path, capsys, *args: str) -> tuple[int, str]:
    code = main(["--config", str(config), "report", *args])
    return code, capsys.readouterr().out


def _advice(config: Path, capsys) -> dict[str, list[str]]:
    code, out = _report(config, capsys, "--json")
    assert code == 0
    return {
        job["job"]: [a for step in job["steps"] for a in step["advice"]] for job in json.loads(out)["jobs"]
    }


def test_each_piece_of_advice_comes_with_its_evidence_and_only_where_it_applies(fleet, capsys):
    advice = _advice(fleet, capsys)

    assert sorted(advice) == sorted(JOBS), "every job with records in the window"
    assert advice["tight"] == advice["oom_once"] == advice["mostly_first"] == advice["spot_ok"] == []
    (timeout,) = advice["slow_timeout"]
    assert timeout.startswith("lower timeout: 2h00m is 120x the p95 duration 1m00s of 6 successful runs")
    assert timeout.endswith("about 2m00s would do")
    (expected,) = advice["stale_expected"]
    assert expected.startswith("update expected_duration: 2m00s, but runs take 10m00s (p50) to 10m00s (p95)")
    (spot,) = advice["spot_bad"]
    assert spot.startswith("run on demand: 8 of 10 Spot tries were interrupted (80%)")
    assert "Spot cost $0.0030 where the same runs on demand cost $0.0020" in spot
    (oom,) = advice["oom"]
    assert oom.startswith("raise memory: 2 tries ended out of memory (runs scheduled__2026-11-01, ")
    assert oom.endswith("the step asks for 2048 MiB")
    (retry,) = advice["flaky_start"]
    assert retry.startswith(
        "every one of 3 successes came on a retry: look at the first tries (3 application"
    )


def test_the_figures_per_job(fleet, capsys):
    code, out = _report(fleet, capsys, "--json", "--days", "10")

    assert code == 0
    jobs = {job["job"]: job for job in json.loads(out)["jobs"]}
    tight = jobs["tight"]
    assert (tight["runs"], tight["success_rate"], tight["in_catalog"]) == (6, 1.0, True)
    (step,) = tight["steps"]
    assert step["outcomes"] == {"succeeded": 6}, "the record 40 days old is outside the window"
    assert (step["p50_seconds"], step["p95_seconds"]) == (58.0, 70.0)
    assert (step["expected_seconds"], step["timeout_seconds"]) == (60.0, 180.0)
    assert tight["cost_per_run"] == pytest.approx(0.001)
    assert tight["cost_per_month"] == pytest.approx(0.006 * 30 / 10)
    spot = jobs["spot_bad"]
    assert (spot["steps"][0]["spot_tries"], spot["steps"][0]["spot_interruption_rate"]) == (10, 0.8)
    assert spot["spot_saved"] == pytest.approx(10 * (0.001 - 0.0003))
    assert jobs["flaky_start"]["steps"][0]["outcomes"] == {"succeeded": 3}


def test_the_text_report_and_one_job(fleet, capsys):
    code, out = _report(fleet, capsys, "--job", "spot_bad")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Fleet report: the last 30 days"
    assert lines[2].startswith("spot_bad: 2 runs, 100% of step runs succeeded; cost $0.0015 a run")
    assert "    Spot: 10 tries, 80% interrupted; 0% of step runs fell back to on demand" in lines
    assert any(line.startswith("    advice: run on demand: 8 of 10") for line in lines)
    assert not any(line.startswith("tight") for line in lines), "only the job asked for"


def test_a_full_query_is_read_again_in_halves(fleet, capsys, monkeypatch):
    monkeypatch.setattr(report, "MAX_ROWS", 7)

    advice = _advice(fleet, capsys)

    assert sorted(advice) == sorted(JOBS) and len(advice["slow_timeout"]) == 1, "no record lost"
