"""``make run``'s stack as a user gets it: healthy components, the catalog's DAGs, the main job succeeding.

Starts ``python -m local.stack --run data_processor`` (what ``make run`` runs) on free ports with its own
AIRFLOW_HOME, checks it through the REST API, and stops it with SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from local.api import Api
from local.settings import REPO
from tests.support import free_port

pytestmark = pytest.mark.stack


def _wait(condition, timeout: float, what: str, interval: float = 1):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)
    return result


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("stack-home")
    ports = {"aws": free_port(), "slack": free_port(), "api": free_port(), "postgres": free_port()}
    env = {
        **os.environ,
        "LOCAL_AWS_PORT": str(ports["aws"]),
        "LOCAL_SLACK_PORT": str(ports["slack"]),
        "AIRFLOW_API_PORT": str(ports["api"]),
        "LOCAL_POSTGRES_PORT": str(ports["postgres"]),
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
    }
    output = home / "stack.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.stack", "--home", str(home), "--run", "data_processor"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(
            lambda: "Airflow is up" in output.read_text() or process.poll() is not None,
            480,
            "the stack to start",
        )
        assert process.poll() is None, output.read_text()
        yield {"process": process, "ports": ports, "home": home, "output": output, "env": env}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def test_make_run_starts_a_healthy_stack_and_runs_the_main_job(stack):
    api = Api(f"http://127.0.0.1:{stack['ports']['api']}")
    health = api.call("GET", "/api/v2/monitor/health", auth=False)
    assert {k: v["status"] for k, v in health.items()} == {
        "metadatabase": "healthy",
        "scheduler": "healthy",
        "triggerer": "healthy",
        "dag_processor": "healthy",
    }
    shipped = {p.stem for p in (REPO / "config" / "jobs").glob("*.yaml")}
    dags = _wait(
        lambda: (d := api.call("GET", "/api/v2/dags")["dags"]) and {x["dag_id"] for x in d} >= shipped and d,
        300,
        "the catalog's DAGs",
    )
    assert {d["dag_id"] for d in dags} == shipped | {"ecsjobs_monitoring_sync"}
    assert api.call("GET", "/api/v2/importErrors")["total_entries"] == 0
    pool = api.call("GET", "/api/v2/pools/ecs_batch-jobs")
    assert pool["slots"] == 20  # config/environments/local.yaml max_running_tasks

    # make run unpauses the main job, triggers it and reports how the run ended.
    output = stack["output"]
    _wait(lambda: _manual_run_finished(api), 600, "make run's run of data_processor to finish")
    finished = _wait(
        lambda: re.search(r"^data_processor (\S+): (success|failed)$", output.read_text(), re.MULTILINE),
        120,
        "make run to report how the run ended",
    )
    assert finished[2] == "success", output.read_text()
    run = api.call("GET", f"/api/v2/dags/data_processor/dagRuns/{finished[1]}")
    assert (run["run_type"], run["state"]) == ("manual", "success")
    assert f"/dags/data_processor/runs/{quote(finished[1])}" in output.read_text()  # its page in the UI
    assert api.call("GET", "/api/v2/dags/data_processor")["is_paused"] is False

    with urllib.request.urlopen(
        f"http://127.0.0.1:{stack['ports']['aws']}/_local/tasks", timeout=10
    ) as response:
        tasks = json.load(response)
    env = [t["overrides"]["containerOverrides"][0].get("environment", []) for t in tasks]
    job_date = run["logical_date"][:10]  # JOB_DATE: "{{ ds }}"
    assert [{"name": "JOB_DATE", "value": job_date}, {"name": "REGION", "value": "us-east-1"}] in env


def _manual_run_finished(api: Api) -> bool:
    runs = api.call("GET", "/api/v2/dags/data_processor/dagRuns?run_type=manual")["dag_runs"]
    return bool(runs) and all(run["state"] in ("success", "failed") for run in runs)


def test_make_airflow_runs_the_cli_against_the_stack(stack):
    """``make airflow ARGS=...`` (``python -m local.cli``): the CLI sees the stack's DB and its run."""
    run_id = re.search(r"^data_processor (\S+): success$", stack["output"].read_text(), re.MULTILINE)[1]
    cli = [sys.executable, "-m", "local.cli", "--home", str(stack["home"])]
    result = subprocess.run(
        [*cli, "dags", "list-runs", "data_processor", "--output", "json"],
        cwd=REPO,
        env=stack["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout.splitlines()[-1])  # after Airflow's warnings
    assert {run["run_id"]: run["state"] for run in runs}[run_id] == "success"


def test_sigterm_stops_every_process_it_started_even_when_signalled_again(stack):
    process: subprocess.Popen = stack["process"]
    children = _children(process.pid)
    # PostgreSQL, local AWS, local Slack, api-server, scheduler, dag-processor, triggerer
    assert len(children) >= 7

    process.send_signal(signal.SIGTERM)
    _wait(lambda: "stopping ..." in stack["output"].read_text(), 30, "the stack to start stopping", 0.05)
    # While it stops: make passes its own SIGTERM on (a `kill` of make's process group), the user hits Ctrl-C.
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    still_running = [pid for pid in children if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
    assert still_running == []


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == current]
        found += kids
        frontier += kids
    return found


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False
