"""The docker compose stack: ``make run TOPOLOGY=celery``'s stack as containers; ``docker-compose.yaml`` is
generated here.

``python -m local.compose`` writes ``docker-compose.yaml`` from ``local/settings.py`` (``--check`` only says
whether the committed file is current), so the compose stack and ``make run`` share one set of ports,
Airflow settings and connections. ``python -m local.compose init`` is the ``airflow-init`` service: the
one-off steps ``make run`` takes before it starts the components (migrate, seed the local AWS, the pool).

What differs from ``make run``, on purpose: the metadata DB is the postgres service (the official image),
not ``make run``'s own PostgreSQL process; services listen on 0.0.0.0 and reach each other by service name;
the repository's folders are mounted under /opt/airflow; AIRFLOW_HOME is a named volume that the Airflow
containers share, as ``make run``'s processes share ``.local/airflow``; and a component with several instances
(schedulers, triggerers, Celery workers) is one service with that many replicas, each in a container of its
own, so with the default ports and its container's hostname as its Celery hostname.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ecsjobs.catalog import load_catalog
from ecsjobs.models import pool_name
from local.settings import (
    DEFAULT_PORTS,
    REPO,
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
BROKER_SERVICE = "local-broker"
TOPOLOGY = "celery"  # MWAA's shape, as the official Airflow docker-compose.yaml is CeleryExecutor
PORTS = Ports(**DEFAULT_PORTS)
POSTGRES = "postgresql+psycopg2://airflow:airflow@postgres/airflow"
# The stand-ins skip the image's Airflow entrypoint (it waits for the metadata DB) but keep its init process.
PLAIN_ENTRYPOINT = ["/usr/bin/dumb-init", "--"]
HEALTH_TIMING = {"interval": "10s", "timeout": "10s", "retries": 10, "start_period": "30s"}


def component_service(component: str) -> str:
    """The compose service running an Airflow component (any instance of it), e.g. ``airflow-scheduler`` for
    ``scheduler-2``, ``airflow-worker`` for ``worker-1``."""
    return f"airflow-{component.rsplit('-', 1)[0] if component[-1].isdigit() else component}"


def replicas() -> dict[str, tuple[str, list[str]]]:
    """Service -> (component kind, ``airflow`` arguments) with how many instances ``make run`` starts."""
    services: dict[str, tuple[str, list[str], int]] = {}
    for component in components(TOPOLOGY, PORTS):
        service = component_service(component.name)
        args = [a for a in component.args if a != "--celery-hostname" and "@" not in a]  # the container's
        _kind, _args, count = services.get(service, (component.args[0], args, 0))
        services[service] = (component.args[0], args, count + 1)
    return services


API_SERVICE = component_service("api-server")


def stand_in_commands() -> dict[str, list[str]]:
    """The local AWS and local Slack servers as ``make run`` starts them, listening on the container's
    interfaces so that the other services reach them."""
    return {
        AWS_SERVICE: ["python", "-m", "local.aws", "--host", "0.0.0.0", "--port", str(PORTS.aws)],
        BROKER_SERVICE: ["python", "-m", "local.aws", "--host", "0.0.0.0", "--port", str(PORTS.broker)],
        SLACK_SERVICE: ["python", "-m", "local.slack", "--host", "0.0.0.0", "--port", str(PORTS.slack)],
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
        "LOCAL_AWS_PORT": str(PORTS.aws),
        "LOCAL_SLACK_PORT": str(PORTS.slack),
    }


def init_commands() -> list[list[str]]:
    """What ``airflow-init`` runs: ``make run``'s migrate, seed and pool steps, against the services."""
    env = load_catalog().environment
    description = f"ECS tasks of the batch jobs on cluster {env.cluster}"
    return [
        ["airflow", "db", "migrate"],
        ["python", "-m", "local.seed", "--endpoint", f"http://{AWS_SERVICE}:{PORTS.aws}"],
        ["airflow", "pools", "set", pool_name(env), str(env.max_running_tasks), description],
    ]


class _Flow(list):
    """A list written on one line (commands, health checks)."""


_SEQ = "tag:yaml.org,2002:seq"


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
        "postgres": {
            "image": "postgres:16",
            "environment": {
                "POSTGRES_USER": "airflow",
                "POSTGRES_PASSWORD": "airflow",
                "POSTGRES_DB": "airflow",
            },
            "volumes": ["postgres-db:/var/lib/postgresql/data"],
            "healthcheck": {"test": _Flow(["CMD", "pg_isready", "-U", "airflow"]), **HEALTH_TIMING},
            "restart": "always",
        }
    }
    ready = {AWS_SERVICE: "/_local/stats", BROKER_SERVICE: "/_local/stats", SLACK_SERVICE: "/messages"}
    stand_in_ports = (PORTS.aws, PORTS.broker, PORTS.slack)
    for (service, command), port in zip(stand_in_commands().items(), stand_in_ports, strict=True):
        services[service] = {
            **image,
            "entrypoint": _Flow(PLAIN_ENTRYPOINT),
            "command": _Flow(command),
            "environment": stand_in_env,
            "volumes": volumes,
            "ports": _Flow([f"{port}:{port}"]),
            "healthcheck": _http_health(f"http://localhost:{port}{ready[service]}"),
            "restart": "always",
        }
    services[INIT_SERVICE] = {
        **image,
        "command": _Flow(["python", "-m", "local.compose", "init"]),
        "environment": env,
        "volumes": airflow_volumes,
        "depends_on": {"postgres": healthy, AWS_SERVICE: healthy},
    }
    checks = {
        "api-server": _http_health(f"http://localhost:{PORTS.api}/api/v2/version"),
        "scheduler": _http_health(f"http://localhost:{PORTS.scheduler_health}/health"),
        "dag-processor": _job_health("DagProcessorJob"),
        "triggerer": _job_health("TriggererJob"),
        "celery": _worker_health(),
    }
    for service, (kind, args, count) in replicas().items():
        needs = {INIT_SERVICE: initialized, "postgres": healthy, AWS_SERVICE: healthy, SLACK_SERVICE: healthy}
        if kind in ("scheduler", "celery"):  # they reach the broker; the workers' tasks the execution API
            needs[BROKER_SERVICE] = healthy
        if kind == "celery":
            needs[API_SERVICE] = healthy
        services[service] = {
            **image,
            "command": _Flow(["airflow", *args]),
            "environment": env,
            "volumes": airflow_volumes,
            **({"ports": _Flow([f"{PORTS.api}:{PORTS.api}"])} if kind == "api-server" else {}),
            "healthcheck": checks[kind],
            "restart": "always",
            "depends_on": needs,
            **({"scale": count} if count > 1 else {}),
        }
    return {
        "x-airflow-environment": env,
        "services": services,
        "volumes": {"postgres-db": None, "airflow-home": None},
    }


def _http_health(url: str) -> dict[str, Any]:
    return {"test": _Flow(["CMD", "curl", "--fail", "--silent", url]), **HEALTH_TIMING}


def _worker_health() -> dict[str, Any]:
    """The official docker-compose.yaml's: the worker answers a Celery ping addressed to its hostname."""
    app = "airflow.providers.celery.executors.celery_executor.app"
    check = f'celery --app {app} inspect ping -d "celery@$${{HOSTNAME}}"'
    return {"test": _Flow(["CMD-SHELL", check]), **HEALTH_TIMING}


def _job_health(job_type: str) -> dict[str, Any]:
    check = f'airflow jobs check --job-type {job_type} --hostname "$${{HOSTNAME}}"'
    return {"test": _Flow(["CMD-SHELL", check]), **HEALTH_TIMING}


HEADER = """\
# Generated by `python -m local.compose` from local/settings.py (make run's ports, Airflow settings and
# connections) and local/compose.py: edit those and regenerate; tests/test_compose.py fails on a stale copy.
#
# `docker compose up --build`: the stack of `make run TOPOLOGY=celery` (MWAA's shape: CeleryExecutor over
# SQS, 2 schedulers, 2 triggerers, 2 Celery workers) as containers, with Postgres as the metadata DB.
# Airflow on http://localhost:8080 (admin / admin), the local AWS on :4566, the local Slack on :4567, the
# Celery broker (SQS) on :4568. `--scale airflow-worker=3` etc. changes a component's number of instances.
# dags/, plugins/, config/ and local/ are mounted read-only: edits show without a rebuild. The image
# (Dockerfile) is apache/airflow at the latest lane's version with lock/latest.txt installed.
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

    Dumper.add_representer(_Flow, lambda dumper, data: dumper.represent_sequence(_SEQ, data, flow_style=True))
    Dumper.add_representer(
        type(None), lambda dumper, _: dumper.represent_scalar("tag:yaml.org,2002:null", "")
    )
    return HEADER + yaml.dump(document, Dumper=Dumper, sort_keys=False, width=200)


def init() -> None:
    """The ``airflow-init`` service: the admin's password file, then ``make run``'s one-off steps."""
    write_passwords(Path(os.environ["AIRFLOW_HOME"]))
    for command in init_commands():
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
