"""How often Airflow fails a try whose ECS task succeeded, with and without ``resume_delay``, in one command.

Airflow 3.2 and 3.3 can take the stale "finished" of a worker that deferred for a failure of the resumed try
when the trigger fires within seconds (apache/airflow#72716); steps adopt the lost result (a retry with no
second ECS task), and ``resume_delay`` holds the trigger back so that the race is rare. This starts one local
stack (as ``make run`` does), with a CPU-bound process beside it, and triggers two copies of a burst job
together, round after round, so that both see the same load: one with ``resume_delay: 0s``, one with the
default. It counts per variant the task instances whose step took more than one Airflow try (each an
adoption: Airflow lost a try), checks that each ran exactly one ECS task, and times the runs.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/race/run.py [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

from ecsjobs.execution.history import started_by_for
from local.settings import REPO, Ports
from local.stack import Stack
from tests.support import free_port

SHARDS = ("a", "b", "c", "d")
DURATIONS = {"a": 1, "b": 2, "c": 3, "d": 1.5}  # seconds each shard's ECS tasks run
STEPS = ("each.first", "each.second")
VARIANTS = {"race_0s": "0s", "race_default": None}  # job id -> its resume_delay (None: the environment's)
JOB = """\
description: Race benchmark - 4 shards x 2 steps of 1 to 3 s.
start_date: 2026-01-01
task_definition: tier-worker
container: app
retry_delay: 1s
{resume_delay}matrix:
  shard: [a, b, c, d]
environment:
  RACE: "{job}"
steps:
  first: {{}}
  second: {{depends_on: [first]}}
"""
# The tier's Airflow settings: a restarted component takes over within seconds (tests/tier/harness.py).
FAST_AIRFLOW = {
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
}


def catalog(folder: Path) -> Path:
    """``config/`` plus the two variants, polled every second as in the tier."""
    shutil.copytree(REPO / "config", folder)
    for job, delay in VARIANTS.items():
        line = f"resume_delay: {delay}\n" if delay else ""
        (folder / "jobs" / f"{job}.yaml").write_text(JOB.format(job=job, resume_delay=line))
    local = folder / "environments" / "local.yaml"
    local.write_text(local.read_text().replace("poll_interval: 2s", "poll_interval: 1s"))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant (8 task instances each)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="race-bench-"))
    ports = Ports(aws=free_port(), slack=free_port(), api=free_port(), postgres=free_port())
    stack = Stack(work / "airflow", ports, work / "logs", catalog(work / "config"), FAST_AIRFLOW)
    spinner = None
    try:
        stack.up(timeout=480)
        from local.api import Api

        api = Api(stack.api_url)
        aws = f"http://127.0.0.1:{ports.aws}"
        stack.wait(lambda: set(VARIANTS) <= _dag_ids(api), 300, "the benchmark's DAGs")
        for shard, seconds in DURATIONS.items():
            rule = {"match": {"env": {"SHARD": shard}}, "scenario": {"duration": seconds}}
            _post(f"{aws}/_local/scenarios", rule)
        for job in VARIANTS:
            api.call("PATCH", f"/api/v2/dags/{job}", {"is_paused": False})
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        runs = {job: [] for job in VARIANTS}
        for round_number in range(args.rounds):
            for job in VARIANTS:
                run_id = f"round-{round_number}"
                api.call("POST", f"/api/v2/dags/{job}/dagRuns", {"dag_run_id": run_id, "logical_date": None})
                runs[job].append(run_id)
            for job in VARIANTS:
                _finished(stack, api, job, runs[job][-1])
        results = [_measure(api, aws, job, runs[job]) for job in VARIANTS]
    finally:
        if spinner:
            spinner.kill()
        stack.down()
    report = {
        "date": datetime.now().strftime("%Y-%m-%d"),
        "rounds": args.rounds,
        "variants": results,
        "duration_ratio": round(results[1]["median_run_seconds"] / results[0]["median_run_seconds"], 2),
    }
    print(json.dumps(report, indent=1) if args.json else _table(report))
    shutil.rmtree(work, ignore_errors=True)


def _measure(api, aws: str, job: str, run_ids: list[str]) -> dict:
    with urllib.request.urlopen(f"{aws}/_local/tasks", timeout=30) as response:
        tasks = json.load(response)
    instances, adopted, wrong = 0, 0, 0
    seconds = []
    for run_id in run_ids:
        run = api.call("GET", f"/api/v2/dags/{job}/dagRuns/{run_id}")
        seconds.append((_moment(run["end_date"]) - _moment(run["start_date"])).total_seconds())
        for ti in api.call("GET", f"/api/v2/dags/{job}/dagRuns/{run_id}/taskInstances?limit=100")[
            "task_instances"
        ]:
            if ti["task_id"] not in STEPS:
                continue
            instances += 1
            adopted += ti["try_number"] > 1
            key = SimpleNamespace(dag_id=job, task_id=ti["task_id"], run_id=run_id, map_index=ti["map_index"])
            ecs = [t for t in tasks if t["startedBy"] == started_by_for(key)]
            wrong += ti["state"] != "success" or len(ecs) != 1
    return {
        "job": job,
        "resume_delay": VARIANTS[job] or "10s (default)",
        "task_instances": instances,
        "lost_tries_adopted": adopted,
        "not_one_ecs_task_or_not_success": wrong,
        "median_run_seconds": round(statistics.median(seconds), 1),
    }


def _table(report: dict) -> str:
    lines = [
        f"{report['date']}, {report['rounds']} rounds of each variant side by side, a CPU-bound process too",
        "",
        "| resume_delay | task instances | lost tries (adopted) | not 1 ECS task or failed | median run s |",
        "|---|--:|--:|--:|--:|",
    ]
    for v in report["variants"]:
        lines.append(
            f"| {v['resume_delay']} | {v['task_instances']} | {v['lost_tries_adopted']} | "
            f"{v['not_one_ecs_task_or_not_success']} | {v['median_run_seconds']} |"
        )
    lines.append(f"\nmedian run time, default / 0s: {report['duration_ratio']}")
    return "\n".join(lines)


def _dag_ids(api) -> set[str]:
    return {d["dag_id"] for d in api.call("GET", "/api/v2/dags?limit=100")["dags"]}


def _finished(stack: Stack, api, job: str, run_id: str) -> None:
    def done() -> bool:
        return api.call("GET", f"/api/v2/dags/{job}/dagRuns/{run_id}")["state"] in ("success", "failed")

    stack.wait(done, 900, f"run {job}/{run_id}")


def _post(url: str, body: dict) -> None:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=30).close()


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
