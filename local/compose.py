"""The docker compose stack: ``make run TOPOLOGY=celery``'s stack as containers; ``docker-compose.yaml`` is
generated here.

``python -m local.compose`` writes ``docker-compose.yaml`` from ``local/settings.py`` (``--check`` only says
whether the committed file is current), so the compose stack and ``make run`` share one set of ports,
Airflow settings and connections. ``python -m local.compose init`` is the ``airflow-init`` service: the
one-off steps ``make run`` takes before it starts the components (migrate, seed the local AWS, the pool).

What differs from ``make run``, on purpose: the metadata DB is the postgres service (the official image),
not ``make run``'s own PostgreSQL process; services listen on 0.0.0.0 and reach each other by service name;
the repository's folders are mounted under /opt/airflow; AIRFLOW_HOME is a named volume that the Airflow
containers share, as ``make run``'s processes share ``.local/airflow``. Each of ``make run``'s processes is a
service of its own (``airflow-scheduler-1``, ``airflow-scheduler-2``, ...) with its own ports, and every port
is a variable with ``make run``'s port as its default (``AIRFLOW_API_PORT=8081 docker compose up``), so that
the file runs as it is on compose's default network and also with host networking beside other stacks.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ecsjobs.catalog.environment import pool_name
from ecsjobs.catalog.loading import load_catalog
from local.settings import (
    DEFAULT_PORTS,
    REPO,
    Component,
    Ports,
    airflow_env,
    broker_url,
    components,
    connections,
    write_passwords,
)

COMPOSE_FILE = REPO / "docker-compose.yaml"
IMAGE = "ecs-batch-jobs-airflow"
APP = PurePosixPath("/opt/airflow")  # the repository's mounted folders, as in the official Airflow image
HOME = APP / "home"  # AIRFLOW_HOME: the named volume airflow-home
MOUNTED = ("dags", "plugins", "config", "local")  # read-only: the containers never write into the checkout
AWS_SERVICE, SLACK_SERVICE, INIT_SERVICE = "local-aws", "local-slack", "airflow-init"
BROKER_SERVICE, POSTGRES_SERVICE = "local-broker", "postgres"
TOPOLOGY = "celery"  # MWAA's shape, as the official Airflow docker-compose.yaml is CeleryExecutor
NATIVE_PORTS = Ports(**DEFAULT_PORTS)  # make run's; their variables below default to them
# The variable that moves each shared port (make run reads the same names) and, for the postgres service, the
# postgres image's port; PGPORT makes the server and pg_isready use it.
PORT_VARIABLES = {
    "aws": ("LOCAL_AWS_PORT", NATIVE_PORTS.aws),
    "slack": ("LOCAL_SLACK_PORT", NATIVE_PORTS.slack),
    "api": ("AIRFLOW_API_PORT", NATIVE_PORTS.api),
    "broker": ("LOCAL_BROKER_PORT", NATIVE_PORTS.broker),
    "postgres": ("POSTGRES_PORT", 5432),
}


def variable(name: str, default: int) -> str:
    """A port as the compose file says it: the variable ``name``, or ``default`` when it is unset."""
    return f"${{{name}:-{default}}}"


def instance_variable(component: str) -> str:
    """The variable of the port an instance of a component listens on (a scheduler's health check server, a
    triggerer's or a Celery worker's log server), e.g. ``SCHEDULER_2_PORT``."""
    return f"{component.upper().replace('-', '_')}_PORT"


# The shared ports as variables. Every use formats them into a string (URLs, commands, health checks), and
# the shared environment's instance ports are the first instance's, as make run's are.
PORTS = Ports(
    **{key: variable(name, default) for key, (name, default) in PORT_VARIABLES.items()},
    scheduler_health=variable(instance_variable("scheduler-1"), NATIVE_PORTS.scheduler_health),
    worker_logs=variable(instance_variable("worker-1"), NATIVE_PORTS.worker_logs),
    trigger_logs=variable(instance_variable("triggerer-1"), NATIVE_PORTS.trigger_logs),
)
POSTGRES = f"postgresql+psycopg2://airflow:airflow@{POSTGRES_SERVICE}:{PORTS.postgres}/airflow"
# The stand-ins skip the image's Airflow entrypoint (it waits for the metadata DB) but keep its init process.
PLAIN_ENTRYPOINT = ["/usr/bin/dumb-init", "--"]
# A check of the local servers is a curl; an Airflow one runs its CLI (seconds of CPU), so it runs less often.
QUICK_HEALTH = {"interval": "5s", "timeout": "10s", "retries": 20, "start_period": "10s"}
HEALTH_TIMING = {"interval": "15s", "timeout": "30s", "retries": 10, "start_period": "30s"}


def component_service(component: str) -> str:
    """The compose service of one of ``make run``'s Airflow processes, e.g. ``airflow-scheduler-2``."""
    return f"airflow-{component}"


API_SERVICE = component_service("api-server")


def airflow_services() -> dict[str, Component]:
    """Service -> the process of ``make run TOPOLOGY=celery`` it runs, its own ports as variables."""
    services = {}
    for component in components(TOPOLOGY, NATIVE_PORTS):
        name = instance_variable(component.name)
        own = {key: variable(name, int(port)) for key, port in component.env.items()}
        services[component_service(component.name)] = Component(component.name, component.args, own)
    return services


def stand_in_commands() -> dict[str, list[str]]:
    """The local AWS and local Slack servers as ``make run`` starts them, listening on the container's
    interfaces so that the other services reach them."""
    return {
        AWS_SERVICE: ["python", "-m", "local.aws", "--host", "0.0.0.0", "--port", PORTS.aws],
        BROKER_SERVICE: ["python", "-m", "local.aws", "--host", "0.0.0.0", "--port", PORTS.broker],
        SLACK_SERVICE: ["python", "-m", "local.slack", "--host", "0.0.0.0", "--port", PORTS.slack],
    }


def environment() -> dict[str, str]:
    """The Airflow containers' environment: ``make run``'s with container paths, Postgres, service hosts."""
    return {
        **airflow_env(
            Path(HOME),
            PORTS,
            API_SERVICE,
            Path(APP / "config"),
            database={"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": POSTGRES},
            topology=TOPOLOGY,
        ),
        "AIRFLOW__CELERY__BROKER_URL": broker_url(PORTS, BROKER_SERVICE),
        "AIRFLOW__CORE__DAGS_FOLDER": str(APP / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(APP / "plugins"),
        "AIRFLOW__API__HOST": "0.0.0.0",
        "AIRFLOW__API__BASE_URL": f"http://localhost:{PORTS.api}",  # what the browser on the host opens
        **connections(PORTS, AWS_SERVICE, slack_host=SLACK_SERVICE),
        "PYTHONPATH": f"{APP / 'plugins'}:{APP}",
        "LOCAL_AWS_PORT": PORTS.aws,
        "LOCAL_SLACK_PORT": PORTS.slack,
    }


def init_commands(aws_port: int | str = NATIVE_PORTS.aws) -> list[list[str]]:
    """What ``airflow-init`` runs: ``make run``'s migrate, seed and pool steps, against the services (the
    local AWS on ``aws_port``: the container's ``LOCAL_AWS_PORT``)."""
    env = load_catalog().environment
    description = f"ECS tasks of the batch jobs on cluster {env.cluster}"
    return [
        ["airflow", "db", "migrate"],
        ["python", "-m", "local.seed", "--endpoint", f"http://{AWS_SERVICE}:{aws_port}"],
        ["airflow", "pools", "set", pool_name(env), str(env.max_running_tasks), description],
    ]


class _Flow(list):
    """A list written on one line (commands, health checks)."""


class _Extended(dict):
    """A mapping written as YAML's merge of ``base`` (an anchored block) and its own keys."""

    def __init__(self, base: dict[str, str], own: dict[str, str]) -> None:
        super().__init__({**base, **own})
        self.base, self.own = base, own


_SEQ, _MAP, _MERGE = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map", "tag:yaml.org,2002:merge"


def compose() -> dict[str, Any]:
    """The docker-compose.yaml document; shared blocks are the same objects, written once as YAML anchors."""
    env = environment()
    volumes = [f"./{folder}:{APP / folder}:ro" for folder in MOUNTED]
    airflow_volumes = [*volumes, f"airflow-home:{HOME}"]
    image = {"image": IMAGE, "build": "."}
    stand_in_env = {"PYTHONPATH": env["PYTHONPATH"]}
    initialized = {"condition": "service_completed_successfully"}
    healthy = {"condition": "service_healthy"}
    services: dict[str, Any] = {
        POSTGRES_SERVICE: {
            "image": "postgres:16",
            "environment": {
                "POSTGRES_USER": "airflow",
                "POSTGRES_PASSWORD": "airflow",
                "POSTGRES_DB": "airflow",
                "PGPORT": PORTS.postgres,
            },
            "volumes": ["postgres-db:/var/lib/postgresql/data"],
            "healthcheck": {"test": _Flow(["CMD", "pg_isready", "-U", "airflow"]), **QUICK_HEALTH},
            "restart": "always",
        }
    }
    ready = {AWS_SERVICE: "/_local/stats", BROKER_SERVICE: "/_local/stats", SLACK_SERVICE: "/messages"}
    for service, command in stand_in_commands().items():
        port = command[-1]
        services[service] = {
            **image,
            "entrypoint": _Flow(PLAIN_ENTRYPOINT),
            "command": _Flow(command),
            "environment": stand_in_env,
            "volumes": volumes,
            "ports": _Flow([f"{port}:{port}"]),
            "healthcheck": _http_health(f"http://localhost:{port}{ready[service]}", QUICK_HEALTH),
            "restart": "always",
        }
    services[INIT_SERVICE] = {
        **image,
        "command": _Flow(["python", "-m", "local.compose", "init"]),
        "environment": env,
        "volumes": airflow_volumes,
        "depends_on": {POSTGRES_SERVICE: healthy, AWS_SERVICE: healthy},
    }
    for service, component in airflow_services().items():
        kind = component.args[0]
        needs = {INIT_SERVICE: initialized, POSTGRES_SERVICE: healthy, AWS_SERVICE: healthy}
        needs[SLACK_SERVICE] = healthy
        if kind in ("scheduler", "celery"):  # they reach the broker; the workers' tasks the execution API
            needs[BROKER_SERVICE] = healthy
        if kind == "celery":
            needs[API_SERVICE] = healthy
        services[service] = {
            **image,
            "command": _Flow(["airflow", *component.args]),
            "environment": _Extended(env, component.env) if component.env else env,
            "volumes": airflow_volumes,
            **({"ports": _Flow([f"{PORTS.api}:{PORTS.api}"])} if kind == "api-server" else {}),
            "healthcheck": _health(component),
            "restart": "always",
            "depends_on": needs,
        }
    return {
        "x-airflow-environment": env,
        "services": services,
        "volumes": {"postgres-db": None, "airflow-home": None},
    }


def _health(component: Component) -> dict[str, Any]:
    """An Airflow process's check, as the official docker-compose.yaml has it for its kind."""
    kind = component.args[0]
    if kind == "api-server":
        return _http_health(f"http://localhost:{PORTS.api}/api/v2/version", HEALTH_TIMING)
    if kind == "scheduler":
        port = component.env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"]
        return _http_health(f"http://localhost:{port}/health", HEALTH_TIMING)
    if kind == "celery":
        # The official file pings the worker through the broker (celery inspect ping), which needs a broadcast
        # the SQS transport does not have; the worker's log server answering (403 without a token) instead.
        port = component.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]
        url = f"http://localhost:{port}/log/"
        return {"test": _Flow(["CMD", "curl", "--silent", "--output", "/dev/null", url]), **HEALTH_TIMING}
    job_type = {"dag-processor": "DagProcessorJob", "triggerer": "TriggererJob"}[kind]
    return _shell_health(f'airflow jobs check --job-type {job_type} --hostname "$${{HOSTNAME}}"')


def _http_health(url: str, timing: dict[str, Any]) -> dict[str, Any]:
    return {"test": _Flow(["CMD", "curl", "--fail", "--silent", url]), **timing}


def _shell_health(check: str) -> dict[str, Any]:
    return {"test": _Flow(["CMD-SHELL", check]), **HEALTH_TIMING}


def port_variables() -> dict[str, int]:
    """Every port variable of the file, with its default: the shared ports, then each instance's own."""
    ports = {name: default for name, default in PORT_VARIABLES.values()}
    for component in components(TOPOLOGY, NATIVE_PORTS):
        ports.update({instance_variable(component.name): int(port) for port in component.env.values()})
    return ports


HEADER = """\
# Generated by `python -m local.compose` from local/settings.py (make run's ports, Airflow settings and
# connections) and local/compose.py: edit those and regenerate; tests/integration/test_compose_file.py fails
# on a stale copy.
#
# `docker compose up --build`: the stack of `make run TOPOLOGY=celery` (MWAA's shape: CeleryExecutor over
# SQS, 2 schedulers, 2 triggerers, 2 Celery workers) as containers, with Postgres as the metadata DB, one
# service per process of make run's. Airflow on http://localhost:8080 (admin / admin), the local AWS on :4566,
# the local Slack on :4567, the Celery broker (SQS) on :4568. dags/, plugins/, config/ and local/ are mounted
# read-only: edits show without a rebuild. The image (Dockerfile) is apache/airflow at the latest lane's
# version with lock/latest.txt installed. Each port is a variable (set it in .env or the shell), default in
# brackets:
"""


def render() -> str:
    """The text of docker-compose.yaml."""
    document = compose()
    anchors = {id(document["x-airflow-environment"]): "airflow-environment"}

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data) -> bool:  # only the named blocks are written once and referenced
            return id(data) not in anchors

        def generate_anchor(self, node) -> str:
            return next(anchors[key] for key, known in self.represented_objects.items() if known is node)

    def extended(dumper: Dumper, data: _Extended) -> yaml.MappingNode:
        node = dumper.represent_mapping(_MAP, data.own)
        node.value.insert(0, (yaml.ScalarNode(_MERGE, "<<"), dumper.represent_data(data.base)))
        return node

    Dumper.add_representer(_Flow, lambda dumper, data: dumper.represent_sequence(_SEQ, data, flow_style=True))
    Dumper.add_representer(_Extended, extended)
    Dumper.add_representer(
        type(None), lambda dumper, _: dumper.represent_scalar("tag:yaml.org,2002:null", "")
    )
    table = "".join(f"#   {name} ({default})\n" for name, default in port_variables().items())
    return HEADER + table + yaml.dump(document, Dumper=Dumper, sort_keys=False, width=200)


def init() -> None:
    """The ``airflow-init`` service: the admin's password file, then ``make run``'s one-off steps."""
    write_passwords(Path(os.environ["AIRFLOW_HOME"]))
    for command in init_commands(os.environ["LOCAL_AWS_PORT"]):
        print("+", " ".join(command), flush=True)
        if subprocess.run(command).returncode != 0:
            raise SystemExit(f"airflow-init: `{' '.join(command)}` failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.compose", description=__doc__.splitlines()[0])
    parser.add_argument("action", nargs="?", choices=["write", "init"], default="write")
    parser.add_argument("--check", action="store_true", help="only check that docker-compose.yaml is current")
    args = parser.parse_args(argv)
    if args.action == "init":
        init()
        return 0
    text = render()
    if args.check:
        if COMPOSE_FILE.read_text() != text:
            print(f"{COMPOSE_FILE.name} is stale; run `python -m local.compose`", file=sys.stderr)
            return 1
        print(f"{COMPOSE_FILE.name} is current")
        return 0
    COMPOSE_FILE.write_text(text)
    print(f"wrote {COMPOSE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
