"""docker-compose.yaml: current with its generator, valid for docker compose, the same stack as ``make run``.

Checked statically here, in seconds (``tests/stack/compose`` runs it on a Docker engine): Debian's
``docker-compose`` (installed by the ``docker_compose`` fixture when missing) validates and resolves it, and
the resolved services are compared with what ``make run TOPOLOGY=celery`` starts. ``make run``'s side is
``local.stack.Stack.up()`` itself, with its process launching recorded instead of performed (the commands
and environment are what it would start).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess

import pytest
import yaml

from local import compose
from local.settings import DEFAULT_PORTS, REPO, Ports
from local.stack import Stack

pytestmark = pytest.mark.integration  # subprocesses or servers: not the unit lane

# What the containers do differently from make run's processes, and why (see local/compose.py);
# None: the containers do not set it.
EXPECTED_DIFFERENCES = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
        "postgresql+psycopg2://airflow:airflow@postgres:5432/airflow",
        "the postgres service, with its password",
    ),
    "AIRFLOW__API__HOST": ("0.0.0.0", "the API server listens on the container's interfaces"),
    "AIRFLOW__API__BASE_URL": (
        "http://localhost:8080",
        "the browser reaches the published port on localhost",
    ),
}


def _cli_env() -> dict[str, str]:
    """The environment of a command run as a user runs it (the Makefile puts these on PYTHONPATH)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}


@pytest.fixture(scope="module")
def docker_compose() -> str:
    """Debian's docker-compose, installed with apt when missing (CI machines start without it)."""
    found = shutil.which("docker-compose")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("docker-compose is missing and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker-compose"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        if result.returncode != 0:
            pytest.skip(f"installing docker-compose failed: {' '.join(command)}:\n{result.stderr[-2000:]}")
    return shutil.which("docker-compose") or pytest.fail(
        "apt-get installed docker-compose but it is not on PATH"
    )


@pytest.fixture(scope="module")
def resolved(docker_compose: str) -> dict:
    """docker-compose.yaml as docker compose reads it: anchors resolved, interpolation done."""
    result = subprocess.run(
        [docker_compose, "--file", str(compose.COMPOSE_FILE), "config"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


class RecordingStack(Stack):
    """``make run``'s stack with its process launching recorded instead of performed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started: dict[str, list[str]] = {}
        self.own_env: dict[str, dict[str, str]] = {}
        self.ran: list[list[str]] = []

    def start_database(self, timeout: float) -> None:
        """Not recorded: the compose stack's metadata DB is its postgres service."""

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.started[name], self.own_env[name] = args, env or {}

    def run(self, args: list[str]) -> None:
        self.ran.append(args)

    def wait(self, *args) -> None:
        pass


@pytest.fixture
def make_run(tmp_path: Path, monkeypatch) -> RecordingStack:
    """What ``make run`` starts on its default ports, with an environment that holds only the stack's own."""
    with monkeypatch.context() as clean:
        clean.setattr(os, "environ", {})
        stack = RecordingStack(
            tmp_path / "home", Ports(**DEFAULT_PORTS), tmp_path / "logs", topology=compose.TOPOLOGY
        )
    stack.up()
    return stack


def _in_containers(value: str, home: Path | None = None) -> str:
    """A value of make run's, as the compose stack must say it: container paths and service hosts."""
    if home is not None:
        value = value.replace(str(home), str(compose.HOME))
    value = value.replace(str(REPO), str(compose.APP))
    value = value.replace(
        f"127.0.0.1:{DEFAULT_PORTS['aws']}", f"{compose.AWS_SERVICE}:{DEFAULT_PORTS['aws']}"
    )
    value = value.replace(
        f"127.0.0.1:{DEFAULT_PORTS['slack']}", f"{compose.SLACK_SERVICE}:{DEFAULT_PORTS['slack']}"
    )
    value = value.replace(
        f"127.0.0.1:{DEFAULT_PORTS['broker']}", f"{compose.BROKER_SERVICE}:{DEFAULT_PORTS['broker']}"
    )
    return value.replace(f"127.0.0.1:{DEFAULT_PORTS['api']}", f"{compose.API_SERVICE}:{DEFAULT_PORTS['api']}")


def _command(args: list[str]) -> list[str]:
    """A command of make run's as a container runs it: ``python`` and ``airflow`` from PATH, hosts by name."""
    programs = {sys.executable: "python", str(Path(sys.executable).with_name("airflow")): "airflow"}
    command = [programs.get(args[0], args[0]), *args[1:]]
    if "--host" in command:  # a server: listens on every interface so that the other containers reach it
        command[command.index("--host") + 1] = "0.0.0.0"
    return [_in_containers(arg) for arg in command]


def _airflow_services(make_run: RecordingStack) -> list[str]:
    return sorted({compose.component_service(name) for name in make_run.components})


def test_the_committed_file_is_what_the_generator_writes():
    assert compose.COMPOSE_FILE.read_text() == compose.render(), "run `python -m local.compose`"
    result = subprocess.run(
        [sys.executable, "-m", "local.compose", "--check"],
        cwd=REPO,
        env=_cli_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_docker_compose_validates_the_file(docker_compose: str):
    result = subprocess.run(
        [docker_compose, "--file", str(compose.COMPOSE_FILE), "config", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_docker_compose_rejects_a_broken_file(docker_compose: str, tmp_path: Path):
    """The validation is real: a misspelt key fails it."""
    broken = compose.render().replace("depends_on:", "depend_on:", 1)
    (tmp_path / "docker-compose.yaml").write_text(broken)
    result = subprocess.run(
        [docker_compose, "config", "--quiet"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "depend_on" in result.stderr


def test_the_services_run_what_make_run_starts(resolved: dict, make_run: RecordingStack):
    """Each of make run's processes is a service of its own running its command (2 schedulers, 2
    triggerers, 2 workers: each has its own ports, so the file also runs with host networking)."""
    services = resolved["services"]
    stand_ins = {"local-aws": compose.AWS_SERVICE, "local-broker": compose.BROKER_SERVICE}
    stand_ins["local-slack"] = compose.SLACK_SERVICE
    commands = {
        stand_ins.get(name) or compose.component_service(name): _command(args)
        for name, args in make_run.started.items()
    }

    assert set(make_run.started) == {*stand_ins, *make_run.components}
    assert set(services) == {*commands, "postgres", compose.INIT_SERVICE}
    for service, command in commands.items():
        assert services[service]["command"] == command, service
    for kind in ("scheduler", "triggerer", "worker"):
        assert sorted(name for name in services if name.startswith(f"airflow-{kind}-")) == [
            f"airflow-{kind}-1",
            f"airflow-{kind}-2",
        ]


def test_init_takes_make_runs_one_off_steps(resolved: dict, make_run: RecordingStack):
    assert resolved["services"][compose.INIT_SERVICE]["command"] == ["python", "-m", "local.compose", "init"]
    assert compose.init_commands() == [_command(args) for args in make_run.ran]


def test_init_writes_the_admin_password_and_runs_the_steps_in_order(tmp_path: Path, monkeypatch):
    """The commands are recorded, not run: they address the compose services by name, unknown here."""
    ran: list[list[str]] = []
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("LOCAL_AWS_PORT", "4566")
    monkeypatch.setattr(
        compose.subprocess, "run", lambda command: ran.append(command) or CompletedProcess(command, 0)
    )

    compose.init()

    assert (tmp_path / "passwords.json").read_text() == '{"admin": "admin"}'
    assert ran == compose.init_commands()


def test_init_stops_at_the_first_failed_step(tmp_path: Path, monkeypatch):
    ran: list[list[str]] = []
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("LOCAL_AWS_PORT", "4566")
    monkeypatch.setattr(
        compose.subprocess,
        "run",
        lambda command: ran.append(command) or CompletedProcess(command, len(ran) - 1),
    )

    with pytest.raises(SystemExit, match="local.seed"):
        compose.init()
    assert ran == compose.init_commands()[:2]  # migrate succeeded, the seed failed, no pool


def test_airflow_containers_get_make_runs_environment(resolved: dict, make_run: RecordingStack):
    """Each service has the environment of the process of make run's it runs, its own ports included."""
    shared = {key: _in_containers(value, make_run.home) for key, value in make_run.env.items()}
    processes = {compose.INIT_SERVICE: {}}
    processes |= {compose.component_service(name): make_run.own_env[name] for name in make_run.components}
    for service, own in processes.items():
        native = {**shared, **own}
        environment = resolved["services"][service]["environment"]
        unset = {key for key, (value, _why) in EXPECTED_DIFFERENCES.items() if value is None}
        assert set(environment) == set(native) - unset, service
        differences = {key for key in native if environment.get(key) != native[key]}
        assert differences == set(EXPECTED_DIFFERENCES), service
        for key, (value, _why) in EXPECTED_DIFFERENCES.items():
            assert environment.get(key) == value, key
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    # the instances of one component differ in their ports only, as make run's do
    own_ports = [make_run.own_env[f"scheduler-{i}"] for i in (1, 2)]
    assert [set(own.values()) for own in own_ports] == [{"8974"}, {"8984"}]
    assert (
        shared["AIRFLOW__API_AUTH__JWT_SECRET"]
        == resolved["services"][compose.API_SERVICE]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"]
    )


def test_every_port_is_a_variable_with_make_runs_port_as_default(resolved: dict, docker_compose: str):
    """Moving a port (``AIRFLOW_API_PORT=8081 docker compose up``) moves every use of it: the environment,
    the commands, the published port and the health check."""
    moved = {name: str(20000 + i) for i, name in enumerate(compose.port_variables())}
    result = subprocess.run(
        [docker_compose, "--file", str(compose.COMPOSE_FILE), "config"],
        cwd=REPO,
        env={**os.environ, **moved},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    defaults = {str(port) for port in compose.port_variables().values()}
    text = compose.COMPOSE_FILE.read_text().split("\nx-airflow-environment:")[1]
    assert not [port for port in defaults if re.search(rf"[^-]\b{port}\b", text)]  # only as defaults
    again = yaml.safe_load(result.stdout)
    api = again["services"][compose.API_SERVICE]
    assert api["environment"]["AIRFLOW__API__PORT"] == moved["AIRFLOW_API_PORT"]
    assert moved["AIRFLOW_API_PORT"] in api["healthcheck"]["test"][-1]
    worker = again["services"]["airflow-worker-2"]
    assert worker["environment"]["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == moved["WORKER_2_PORT"]
    assert again["services"][compose.AWS_SERVICE]["command"][-1] == moved["LOCAL_AWS_PORT"]
    assert resolved["services"][compose.AWS_SERVICE]["command"][-1] == "4566"


def test_ports_are_published_where_make_run_listens(resolved: dict, make_run: RecordingStack):
    listening = {
        compose.AWS_SERVICE: int(make_run.started["local-aws"][-1]),
        compose.SLACK_SERVICE: int(make_run.started["local-slack"][-1]),
        compose.BROKER_SERVICE: int(make_run.started["local-broker"][-1]),
        compose.API_SERVICE: int(make_run.env["AIRFLOW__API__PORT"]),
    }
    published = {
        name: [(int(p["published"]), int(p["target"])) for p in service.get("ports", [])]
        for name, service in resolved["services"].items()
        if service.get("ports")
    }
    assert published == {service: [(port, port)] for service, port in listening.items()}
    assert set(listening.values()) == set(DEFAULT_PORTS.values())


def _mounts(service: dict) -> dict[str, str]:
    """Target -> source of a resolved service's volumes (docker-compose 1.29 writes source:target:mode)."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume["source"]
        else:
            source, target, *_mode = volume.split(":")
            mounts[target] = source
    return mounts


def test_the_repository_is_mounted_where_the_environment_points(resolved: dict):
    env = compose.environment()
    pointed_at = {
        env["AIRFLOW__CORE__DAGS_FOLDER"],
        env["AIRFLOW__CORE__PLUGINS_FOLDER"],
        env["ECSJOBS_CONFIG_DIR"],
        *env["PYTHONPATH"].split(":"),
    }
    for name, service in resolved["services"].items():
        if name == "postgres":
            continue
        mounts = _mounts(service)
        binds = {target: Path(source) for target, source in mounts.items() if source.startswith("/")}
        assert pointed_at - {str(compose.APP)} <= set(binds), name
        assert (REPO / "local").is_dir() and binds[str(compose.APP / "local")] == REPO / "local", name
        for target, source in binds.items():
            assert source == REPO / Path(target).relative_to(compose.APP), (name, target)
            assert source.is_dir(), source
        named = {target: source for target, source in mounts.items() if not source.startswith("/")}
        airflow = name.startswith("airflow-")
        assert named == ({env["AIRFLOW_HOME"]: "airflow-home"} if airflow else {}), name


def test_services_start_in_order_and_report_health(resolved: dict, make_run: RecordingStack):
    services = resolved["services"]
    for name in [
        compose.AWS_SERVICE,
        compose.BROKER_SERVICE,
        compose.SLACK_SERVICE,
        "postgres",
        *_airflow_services(make_run),
    ]:
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    init_needs = services[compose.INIT_SERVICE]["depends_on"]
    assert init_needs == {
        "postgres": {"condition": "service_healthy"},
        compose.AWS_SERVICE: {"condition": "service_healthy"},
    }
    healthy = {"condition": "service_healthy"}
    for service in _airflow_services(make_run):
        needs = services[service]["depends_on"]
        assert needs[compose.INIT_SERVICE] == {"condition": "service_completed_successfully"}, service
        assert needs[compose.AWS_SERVICE] == needs[compose.SLACK_SERVICE] == healthy
    # the scheduler queues tasks on the broker; the workers take them and call the execution API
    for i in (1, 2):
        assert services[f"airflow-scheduler-{i}"]["depends_on"][compose.BROKER_SERVICE] == healthy
        assert services[f"airflow-worker-{i}"]["depends_on"][compose.BROKER_SERVICE] == healthy
        assert services[f"airflow-worker-{i}"]["depends_on"][compose.API_SERVICE] == healthy


def test_the_image_is_the_latest_lane(resolved: dict):
    dockerfile = (REPO / "Dockerfile").read_text()
    lock = (REPO / "lock" / "latest.txt").read_text()
    airflow = re.search(r"^apache-airflow==(\S+)$", lock, re.M).group(1)
    python = re.search(r"--python-version (\S+)", lock).group(1)

    assert f"ARG AIRFLOW_VERSION={airflow}\n" in dockerfile
    assert f"ARG PYTHON_VERSION={python}\n" in dockerfile
    assert "ARG AIRFLOW_IMAGE=apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}\n" in dockerfile
    assert "FROM ${AIRFLOW_IMAGE}\n" in dockerfile
    assert "COPY lock/latest.txt /requirements/latest.txt" in dockerfile
    assert "pip install --no-cache-dir -r /requirements/latest.txt" in dockerfile
    assert "\n!lock/latest.txt\n" in (REPO / ".dockerignore").read_text() + "\n"
    built = {name: s for name, s in resolved["services"].items() if "build" in s}
    assert set(built) == set(resolved["services"]) - {"postgres"}
    assert {s["image"] for s in built.values()} == {compose.IMAGE}
    assert {Path(s["build"]["context"]) for s in built.values()} == {REPO}
