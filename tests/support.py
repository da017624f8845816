"""Helpers shared by tests: free ports, bounded polling and the stand-in servers run as subprocesses."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from local.settings import REPO

MWAA_AIRFLOW = re.search(r"^apache-airflow==(\S+)$", (REPO / "lock" / "mwaa.in").read_text(), re.M).group(1)
ON_MWAA_LANE = importlib.metadata.version("apache-airflow") == MWAA_AIRFLOW


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition`` until it is truthy; ``TimeoutError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


class LocalServer:
    """``python -m <module>`` on a free port, writing to ``log``; started once ``ready_path`` answers."""

    def __init__(
        self, module: str, ready_path: str, log: Path, args: Sequence[str] = (), timeout: float = 60
    ) -> None:
        self.module = module
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(self.port), *args]
        with log.open("wb") as out:  # the child keeps its own handle
            self.process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: self._answers(ready_path), timeout, f"{module} on {self.url}")
        except TimeoutError as error:
            self.stop()
            raise TimeoutError(f"{error}\n{self.log_tail()}") from None

    def _answers(self, path: str) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.module} exited with {self.process.returncode}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(self.url + path, timeout=1):
                return True
        except OSError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """One JSON call to the server; ``body``, if given, is sent as JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def get(self, path: str) -> Any:
        return self.control("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.control("POST", path, body)

    def client(self, service: str) -> Any:
        """A plain boto3 client of ``service`` on this server (the local AWS)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="l",
            aws_secret_access_key="l",
        )

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM, then SIGKILL if still running after ``timeout`` seconds; the exit code."""
        self.process.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def container_environment(task: dict) -> list[dict]:
    """The environment overrides of a task's first container, as the local AWS recorded its RunTask."""
    containers = task.get("overrides", {}).get("containerOverrides") or [{}]
    return containers[0].get("environment", [])


# A one-step job whose behaviour in the local AWS is picked by its CASE variable (see the run_job fixture).
ONE_STEP_JOB = """\
description: Execution test job.
start_date: 2026-01-01
task_definition: {family}
container: {container}
launch: {launch}
retries: {retries}
retry_delay: 1s
environment:
  CASE: "{case}"
{extra}"""


def one_step_job(
    case: str,
    extra: str = "",
    family: str = "data-processor",
    container: str = "batch-container",
    launch: str = "fargate",
    retries: int = 3,
) -> str:
    """``ONE_STEP_JOB`` filled in: ``extra`` adds top-level keys (or environment lines indented by two)."""
    return ONE_STEP_JOB.format(
        family=family, container=container, launch=launch, retries=retries, case=case, extra=extra
    )


class TaskInstance(SimpleNamespace):
    """What a step reads of its task instance, for running one try's ``execute`` (or a callback) by hand;
    ``max_tries`` is Airflow's: the step's retries plus the adoption reserve, raised by a clear."""

    def __init__(self, dag_id: str, try_number: int, max_tries: int, task_id: str = "run"):
        super().__init__(
            dag_id=dag_id,
            task_id=task_id,
            run_id=f"manual__{dag_id}",
            map_index=-1,
            try_number=try_number,
            max_tries=max_tries,
            start_date=datetime.now(UTC),
            pushed={},
        )

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value

    def xcom_pull(self, **kwargs: Any) -> Any:
        return None


def copied_config(tmp_path: Path) -> Path:
    """A copy of the shipped ``config/``, for a test that edits it."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    return tmp_path / "config"


# What RunTask answers when Fargate Spot has no capacity (as a failure, not an error).
NO_SPOT_CAPACITY = (
    "Capacity is unavailable at this time. Please try again later or select a different availability zone."
)


def no_spot_capacity_once(aws: LocalServer) -> None:
    """The local AWS's next Fargate Spot RunTask places no task: no capacity."""
    fault = {"action": "RunTask", "kind": "failure", "times": 1, "match": {"launch": "FARGATE_SPOT"}}
    aws.post("/_local/faults", {**fault, "reason": NO_SPOT_CAPACITY})
