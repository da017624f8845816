"""What the tier's tests drive: the running stack's REST API and CLI, the local AWS and the local Slack."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
from airflow import __version__ as airflow_version

from ecsjobs.execution.history import started_by_for
from local.api import Api, ApiError
from local.settings import REPO
from local.stack import Stack
from tests.support import container_environment

TIER = Path(__file__).parent
# The last run's component logs, AIRFLOW_HOME and screenshots (git-ignored), one folder per Airflow version:
# CI runs the two lanes' tiers side by side.
OUTPUT = TIER / "output" / f"airflow-{airflow_version}"
FAST_AIRFLOW = {
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "15",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
}
FINISHED = ("success", "failed")
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def tier_catalog(folder: Path) -> Path:
    """``config/`` plus the tier's jobs, polled every second."""
    shutil.copytree(REPO / "config", folder)
    for job in (TIER / "jobs").glob("*.yaml"):
        shutil.copy(job, folder / "jobs" / job.name)
    local = folder / "environments" / "local.yaml"
    text, found = re.subn(r"(?m)^poll_interval: .*$", "poll_interval: 1s", local.read_text())
    assert found == 1, f"no poll_interval line to change in {local}"
    local.write_text(text)
    return folder


class Tier:
    """The running stack and what the tests ask of it: the REST API, the local AWS and the local Slack."""

    def __init__(self, stack: Stack, output: Path):
        self.stack, self.output = stack, output
        self.api = Api(stack.api_url)
        self.aws_url = f"http://127.0.0.1:{stack.ports.aws}"
        self.slack_url = f"http://127.0.0.1:{stack.ports.slack}"

    # -- the local AWS and Slack -----------------------------------------------------------------------------

    def aws(self, method: str, path: str, body: Any = None) -> Any:
        return _json_call(method, self.aws_url + path, body)

    def scenario(self, match: dict, scenario: dict, times: int | None = None) -> None:
        rule = {"match": match, "scenario": scenario, **({"times": times} if times else {})}
        self.aws("POST", "/_local/scenarios", rule)

    def ecs_tasks(self, dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> list[dict]:
        """The ECS tasks one task instance started (every try), oldest first, found by its ``startedBy``."""
        wanted = started_by(dag_id, task_id, run_id, map_index)
        tasks = [t for t in self.aws("GET", "/_local/tasks") if t["startedBy"] == wanted]
        return sorted(tasks, key=lambda t: t["createdAt"])

    def slack_messages(self) -> list[dict]:
        return _json_call("GET", self.slack_url + "/messages")

    def audit(self, job: str, since: float) -> list[dict]:
        """The job's audit records written since ``since`` (epoch seconds), from the local CloudWatch Logs."""
        logs = boto3.client("logs", endpoint_url=self.aws_url, region_name="us-east-1", **LOCAL_CREDENTIALS)
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName="/batch-jobs/audit", logStreamNames=[job], startTime=int(since * 1000)
        )
        return [json.loads(event["message"]) for page in pages for event in page["events"]]

    # -- Airflow ---------------------------------------------------------------------------------------------

    def airflow(self, *args: str) -> str:
        """The ``airflow`` CLI with the stack's environment, as an operator on the host runs it."""
        command = [str(Path(sys.executable).with_name("airflow")), *args]
        result = subprocess.run(command, env=self.stack.env, cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def unpause(self, dag_id: str) -> None:
        """What the trigger form's "Unpause on trigger" does: runs of a paused DAG never start."""
        self.api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self.api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})

    def trigger(
        self, dag_id: str, run_id: str, conf: dict | None = None, logical_date: str | None = None
    ) -> dict:
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf or {}}
        return self.api.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)

    def backfill(self, body: dict) -> dict:
        return self.api.call("POST", "/api/v2/backfills", body)

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100"
        return self.api.call("GET", path)["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict]:
        index = f"/{map_index}" if map_index >= 0 else ""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}{index}/tries"
        return self.api.call("GET", path)["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int = -1) -> Any:
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
            f"?map_index={map_index}&deserialize=true"
        )
        return self.api.call("GET", path)["value"]

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 240, restart_exited: bool = False
    ) -> dict:
        return self.wait(
            lambda: (run := self.run(dag_id, run_id))["state"] in FINISHED and run,
            timeout,
            f"run {dag_id}/{run_id} to finish",
            restart_exited,
        )

    def wait(
        self, condition: Callable[[], Any], timeout: float, what: str, restart_exited: bool = False
    ) -> Any:
        """Poll ``condition`` until it returns something truthy, and return that; fail naming ``what``,
        with the stack's component logs to look at, after ``timeout`` seconds. A poll the API server did not
        answer within its 30 s (a loaded CI machine) counts as not yet. A component that dies fails the
        test, unless ``restart_exited``: then an Airflow component that exits is started again, as docker
        compose and MWAA do (``Stack.supervise``)."""
        deadline = time.monotonic() + timeout
        while not (result := _unless_slow(condition)):
            if restart_exited:
                self.stack.supervise()
            for name, process in self.stack.processes.items():
                assert process.poll() is None, f"{name} died; see {self.stack.log_dir / name}.log"
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}; component logs in {self.stack.log_dir}")
            time.sleep(0.5)
        return result


def started_by(dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
    """The ``startedBy`` of every ECS task of one task instance (each try's task also has ``ecsjobs:try``)."""
    return started_by_for(SimpleNamespace(dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index))


def tag(task: dict, key: str) -> str | None:
    return next((t["value"] for t in task["tags"] if t["key"] == key), None)


def environment(task: dict) -> dict[str, str]:
    """The environment overrides of a task's first container, as a dict."""
    return {e["name"]: e["value"] for e in container_environment(task)}


def _json_call(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _unless_slow(condition: Callable[[], Any]) -> Any:
    try:
        return condition()
    except TimeoutError:  # socket.timeout: the API server is alive (checked by the caller) but busy
        return None
    except ApiError as error:
        # Both CI lanes' tiers side by side: Airflow 3.2.1's API server once answered a GET of a run with
        # 500 mid-burst. A poll is a read; its next one asks again. Any other status is the test's answer.
        if error.status < 500:
            raise
        print(f"tier: poll answered {error}; asking again", file=sys.stderr)
        return None
