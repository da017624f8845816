"""docker-compose.yaml run for real: the stack starts on a Docker engine, runs the main job, alerts, and goes.

The engine is a private dockerd (``engine.py``); no image registry is reachable here, so apache/airflow and
postgres are stand-ins made from Debian's packages (``images.py``), and the file runs with an override that
changes images and networking only (``project.py``). What is checked is what a user sees: every service
healthy, the admin login, the catalog's DAGs with no import errors, ``data_processor`` triggered over REST
succeeding on the local AWS container with its container's log in the UI's log endpoint, a failing run's
Slack alert in the local Slack container, and ``docker-compose down -v`` leaving nothing behind.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest

from local import compose
from local.api import Api, ApiError
from local.settings import REPO
from tests.stack.compose import images
from tests.stack.compose.engine import ComposeTestError, Engine, cache_dir, install_packages
from tests.stack.compose.project import Project, check_free, free_ports
from tests.tier.harness import started_by

pytestmark = pytest.mark.compose

FAILING_DATE = "2026-03-01"  # the local AWS fails data_processor's task of this day (JOB_DATE)
_names = itertools.count(1)


def _fail_on(error: ComposeTestError):
    pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    try:
        return install_packages()
    except ComposeTestError as error:
        _fail_on(error)


@pytest.fixture(scope="module")
def engine(tools: dict[str, str]) -> Iterator[Engine]:
    try:
        started = Engine(tools["dockerd"], tools["docker"], cache_dir() / "data").start()
    except ComposeTestError as error:
        _fail_on(error)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def stand_ins(engine: Engine, tools: dict[str, str], tmp_path_factory) -> images.StandIns:
    try:
        return images.ensure(engine, tools["debootstrap"], tmp_path_factory.mktemp("images"))
    except ComposeTestError as error:
        _fail_on(error)


@pytest.fixture(scope="module")
def stack(engine: Engine, tools: dict[str, str], stand_ins, tmp_path_factory) -> Iterator[Project]:
    ports = free_ports()
    project = Project(
        engine, tools["docker-compose"], stand_ins, tmp_path_factory.mktemp("compose"), ports, next(_names)
    )
    try:
        check_free(ports)
        project.build()
        project.up()
        project.wait_healthy(600)
    except ComposeTestError as error:
        project.run("down", "--volumes", "--remove-orphans", check=False)
        _fail_on(error)
    try:
        yield project
    finally:
        if project.containers():
            project.down()


@pytest.fixture(scope="module")
def api(stack: Project) -> Api:
    return Api(f"http://127.0.0.1:{stack.ports['AIRFLOW_API_PORT']}")


def _local(stack: Project, server: str, path: str, body: Any = None) -> Any:
    port = stack.ports[server]
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method="POST" if data else "GET"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _tasks_of_run(stack: Project, run: dict) -> list[dict]:
    """The ECS tasks of the run's one step, as ECS on the local AWS container describes them."""
    wanted = started_by(run["dag_id"], "run", run["dag_run_id"])
    found = [t for t in _local(stack, "LOCAL_AWS_PORT", "/_local/tasks") if t["startedBy"] == wanted]
    if not found:
        return []
    ecs = boto3.client(
        "ecs",
        endpoint_url=f"http://127.0.0.1:{stack.ports['LOCAL_AWS_PORT']}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    return ecs.describe_tasks(cluster=found[0]["cluster"], tasks=[t["taskArn"] for t in found])["tasks"]


def _finished_run(api: Api, dag_id: str, logical_date: str | None, timeout: float = 300) -> dict:
    api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    run = api.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": logical_date})
    deadline = time.monotonic() + timeout
    while run["state"] not in ("success", "failed"):
        assert time.monotonic() < deadline, f"{dag_id} run {run['dag_run_id']} still {run['state']}"
        time.sleep(2)
        run = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}")
    return run


@pytest.fixture(scope="module")
def main_run(api: Api) -> dict:
    """data_processor triggered as a user does over REST: ``"logical_date": null`` runs it now."""
    return _finished_run(api, "data_processor", None)


def test_every_service_is_up_and_healthy_and_runs_the_files_command(stack: Project):
    containers = stack.containers()
    resolved = stack.resolved["services"]
    assert set(containers) == set(resolved) == set(compose.compose()["services"])
    for name, container in containers.items():
        state = container["State"]
        if name == compose.INIT_SERVICE:
            assert (state["Status"], state["ExitCode"]) == ("exited", 0), stack.logs(name)
            continue
        assert state["Status"] == "running", name
        assert state["Health"]["Status"] == "healthy", name
        if "command" in resolved[name]:  # postgres runs its image's
            assert container["Config"]["Cmd"] == resolved[name]["command"], name
    # MWAA's shape, one container per process of make run TOPOLOGY=celery
    assert sum(name.startswith("airflow-scheduler-") for name in containers) == 2
    assert sum(name.startswith("airflow-triggerer-") for name in containers) == 2
    assert sum(name.startswith("airflow-worker-") for name in containers) == 2


def test_the_api_server_answers_with_the_admin_login(stack: Project, api: Api):
    assert api.call("GET", "/api/v2/version")["version"] == images.airflow_version()
    url = f"http://127.0.0.1:{stack.ports['AIRFLOW_API_PORT']}"
    with pytest.raises(ApiError) as refused:
        Api(url).call("POST", "/auth/token", {"username": "admin", "password": "wrong"}, auth=False)
    assert refused.value.status == 401


def test_the_catalogs_dags_are_listed_with_no_import_errors(api: Api):
    shipped = {path.stem for path in (REPO / "config" / "jobs").glob("*.yaml")}
    deadline = time.monotonic() + 300
    while not shipped <= (listed := {d["dag_id"] for d in api.call("GET", "/api/v2/dags?limit=100")["dags"]}):
        assert time.monotonic() < deadline, f"not listed: {shipped - listed}"
        time.sleep(2)
    assert listed == shipped | {"ecsjobs_monitoring_sync"}
    assert api.call("GET", "/api/v2/importErrors")["total_entries"] == 0
    health = api.call("GET", "/api/v2/monitor/health", auth=False)
    assert {component: v["status"] for component, v in health.items()} == dict.fromkeys(
        ("metadatabase", "scheduler", "triggerer", "dag_processor"), "healthy"
    )


def test_data_processor_triggered_over_rest_succeeds_on_the_local_aws(stack: Project, api: Api, main_run):
    assert main_run["state"] == "success"
    run_id = main_run["dag_run_id"]
    tis = api.call("GET", f"/api/v2/dags/data_processor/dagRuns/{run_id}/taskInstances")["task_instances"]
    assert [(ti["state"], ti["queue"]) for ti in tis] == [("success", "default")]  # a Celery worker's queue
    tasks = _tasks_of_run(stack, main_run)
    assert [(t["lastStatus"], t["containers"][0]["exitCode"]) for t in tasks] == [("STOPPED", 0)]
    environment = tasks[0]["overrides"]["containerOverrides"][0]["environment"]
    day = main_run["run_after"][:10]  # {{ ds }} of a run with no logical date is its run_after's day
    assert {"name": "JOB_DATE", "value": day} in environment


def test_its_container_log_is_in_the_ui_log_endpoint(api: Api, main_run):
    run_id = main_run["dag_run_id"]
    log = api.call("GET", f"/api/v2/dags/data_processor/dagRuns/{run_id}/taskInstances/run/logs/1")
    lines = [str(entry.get("event")) for entry in log["content"]]
    # the local AWS's container writes these to CloudWatch Logs; the step forwards them to its log
    assert any(line.endswith("Starting batch job") for line in lines), lines[-20:]
    assert any(line.endswith("Processing records") for line in lines), lines[-20:]


def test_a_failing_runs_slack_alert_arrives_in_the_local_slack(stack: Project, api: Api):
    match = {"family": "data-processor", "env": {"JOB_DATE": FAILING_DATE}}
    rule = {"match": match, "scenario": {"exit_code": 1, "duration": 1}}
    _local(stack, "LOCAL_AWS_PORT", "/_local/scenarios", rule)

    run = _finished_run(api, "data_processor", f"{FAILING_DATE}T00:00:00Z")

    assert run["state"] == "failed"
    [task] = _tasks_of_run(stack, run)
    assert task["containers"][0]["exitCode"] == 1
    deadline = time.monotonic() + 60
    while not _alerts_of(stack, run):
        assert time.monotonic() < deadline, "no alert for the failed run"
        time.sleep(1)
    time.sleep(5)  # a second alert of the same failure would have come by now
    [alert] = _alerts_of(stack, run)
    assert alert["text"].startswith(":red_circle: Step failed: data_processor / run")
    assert task["taskArn"] in alert["text"]


def _alerts_of(stack: Project, run: dict) -> list[dict]:
    return [m for m in _local(stack, "LOCAL_SLACK_PORT", "/messages") if run["dag_run_id"] in json.dumps(m)]


def test_down_leaves_no_container_volume_or_process(stack: Project):
    pids = [c["State"]["Pid"] for c in stack.containers().values() if c["State"]["Pid"]]
    assert pids and stack.volumes()

    stack.down()

    assert stack.containers() == {}
    assert stack.volumes() == []
    assert [pid for pid in pids if psutil.pid_exists(pid)] == []
    check_free(stack.ports)  # nothing listens on the stack's ports any more


def test_a_failed_image_build_is_named(engine: Engine, tools: dict[str, str], stand_ins, tmp_path: Path):
    """The project's Dockerfile on a base without pip (the postgres stand-in): its RUN pip install fails."""
    broken = images.StandIns(airflow=stand_ins.postgres, postgres=stand_ins.postgres)
    project = Project(engine, tools["docker-compose"], broken, tmp_path, free_ports(), next(_names))

    with pytest.raises(ComposeTestError, match="the image build failed") as failed:
        project.build()
    assert "pip install --no-cache-dir -r /requirements/latest.txt" in str(failed.value)


def test_a_port_in_use_is_named_with_its_variable():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ComposeTestError, match=rf"port {port} \(AIRFLOW_API_PORT\) is already in use"):
            check_free({"LOCAL_AWS_PORT": free_ports()["LOCAL_AWS_PORT"], "AIRFLOW_API_PORT": port})


def test_a_missing_engine_is_said_plainly(tmp_path: Path):
    with pytest.raises(ComposeTestError, match="no Docker engine: /nonexistent/dockerd does not exist"):
        Engine("/nonexistent/dockerd", "docker", tmp_path / "data").start()


def test_an_engine_that_exits_at_start_fails_at_once_with_its_log(tmp_path: Path):
    """A start timeout longer than the test's own (pytest-timeout's 300 s): a wait for it would fail this."""
    with pytest.raises(ComposeTestError, match="dockerd exited with 1"):
        Engine("/bin/false", "/bin/false", tmp_path / "data").start(timeout=3600)
