"""The one place that says how the local stack is wired: ports, Airflow settings, connections.

``make run``, the tests and the docker-compose consistency check all read it, so they cannot drift apart.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from local import postgres

REPO = Path(__file__).resolve().parents[1]
# The ports `make run` listens on and docker compose publishes; LOCAL_AWS_PORT etc. move `make run`'s.
DEFAULT_PORTS = {"aws": 4566, "slack": 4567, "api": 8080, "broker": 4568}
LOCAL_AWS_PORT = int(os.environ.get("LOCAL_AWS_PORT", DEFAULT_PORTS["aws"]))
LOCAL_SLACK_PORT = int(os.environ.get("LOCAL_SLACK_PORT", DEFAULT_PORTS["slack"]))
API_PORT = int(os.environ.get("AIRFLOW_API_PORT", DEFAULT_PORTS["api"]))
# TOPOLOGY=celery's Celery broker: SQS on a local AWS server of its own, so that a test can cut the broker off
# without cutting ECS off (MWAA's broker is an SQS queue in the service's account, not the user's).
LOCAL_BROKER_PORT = int(os.environ.get("LOCAL_BROKER_PORT", DEFAULT_PORTS["broker"]))
# `make run`'s metadata DB (local/postgres.py); not 5432, which a Postgres of the user's own may have taken.
LOCAL_POSTGRES_PORT = int(os.environ.get("LOCAL_POSTGRES_PORT", 5433))
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"
# Local only: every Airflow component must share one JWT secret or tasks fail with "Invalid auth token".
LOCAL_JWT_SECRET = "local-stack-jwt-secret-not-for-production"
LOCAL_SLACK_TOKEN = "xoxb-local-token"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# The shapes `make run TOPOLOGY=...` starts. "local": one process of each component, LocalExecutor. "celery":
# Amazon MWAA's shape (CeleryExecutor over SQS, several schedulers, a triggerer beside each, Celery workers).
TOPOLOGIES = ("local", "celery")
CELERY = {"schedulers": 2, "triggerers": 2, "workers": 2}
# Small on purpose: MWAA's smallest class runs 5 tasks a worker; fewer slots than steps shows queueing.
WORKER_CONCURRENCY = 4
# How long a Celery task taken by a worker that died stays invisible in the broker's queue before another
# worker gets it (kombu's SQS ``visibility_timeout``; Airflow's default is a day). A step's worker part is
# short (it defers), so a minute is ample, and the scheduler's ``task_queued_timeout`` still covers the rest.
BROKER_VISIBILITY_TIMEOUT = 60
# How many times a scheduler sends a step to the broker again when sending it timed out (``[celery]
# operation_timeout``, 1 s), once per scheduler loop. Airflow's default, 3, fails a step after about 8 s of
# broker outage; 60 rides out a couple of minutes, and the step is sent once the broker answers.
TASK_PUBLISH_MAX_RETRIES = 60


@dataclass(frozen=True)
class Ports:
    aws: int = LOCAL_AWS_PORT
    slack: int = LOCAL_SLACK_PORT
    api: int = API_PORT
    postgres: int = LOCAL_POSTGRES_PORT
    broker: int = LOCAL_BROKER_PORT
    # The first instance's; instance i listens on port + 10 * i (Airflow's defaults for the first).
    worker_logs: int = 8793
    trigger_logs: int = 8794
    scheduler_health: int = 8974


@dataclass(frozen=True)
class Component:
    """One Airflow process of a topology: its name (and log file's), its ``airflow`` arguments, and the
    settings that differ between instances of one component (the ports each listens on)."""

    name: str
    args: tuple[str, ...]
    env: dict[str, str]


def components(topology: str, ports: Ports) -> list[Component]:
    """The Airflow processes of ``topology``, in the order they are started."""
    if topology == "local":
        return [Component(name, (name,), {}) for name in AIRFLOW_COMPONENTS]
    if topology != "celery":
        raise ValueError(f"unknown topology {topology!r}; the topologies are {', '.join(TOPOLOGIES)}")
    result = [
        Component("api-server", ("api-server",), {}),
        Component("dag-processor", ("dag-processor",), {}),
    ]
    for i in range(CELERY["schedulers"]):
        port = {
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(ports.scheduler_health + 10 * i)
        }
        result.append(Component(f"scheduler-{i + 1}", ("scheduler",), port))
    for i in range(CELERY["triggerers"]):
        port = {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports.trigger_logs + 10 * i)}
        result.append(Component(f"triggerer-{i + 1}", ("triggerer",), port))
    for i in range(CELERY["workers"]):
        name = f"worker-{i + 1}"
        args = ("celery", "worker", "--celery-hostname", f"{name}@%h")
        port = {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports.worker_logs + 10 * i)}
        result.append(Component(name, args, port))
    return result


def broker_url(ports: Ports, host: str = "127.0.0.1") -> str:
    """kombu's URL of the local broker: its SQS endpoint is the URL's host and port, over HTTP."""
    return f"sqs://local:local@{host}:{ports.broker}"


def celery_env(ports: Ports, host: str = "127.0.0.1") -> dict[str, str]:
    """CeleryExecutor over SQS, as MWAA runs it: kombu's SQS transport on the local broker, the results in
    the metadata DB (Airflow's default ``result_backend``)."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url(ports, host),
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__REGION": "us-east-1",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__QUEUE_NAME_PREFIX": "airflow-celery-",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": str(BROKER_VISIBILITY_TIMEOUT),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        "AIRFLOW__CELERY__TASK_PUBLISH_MAX_RETRIES": str(TASK_PUBLISH_MAX_RETRIES),
    }


def connections(ports: Ports, host: str = "127.0.0.1", slack_host: str | None = None) -> dict[str, str]:
    """Airflow connections (as ``AIRFLOW_CONN_*`` variables) pointing at the local AWS and Slack.

    The local Slack is on ``host`` too unless ``slack_host`` says otherwise (docker compose's services).
    """
    aws = {
        "conn_type": "aws",
        "login": "local",
        "password": "local",
        "extra": {"endpoint_url": f"http://{host}:{ports.aws}", "region_name": "us-east-1"},
    }
    slack = {
        "conn_type": "slack",
        "password": LOCAL_SLACK_TOKEN,
        "extra": {"base_url": f"http://{slack_host or host}:{ports.slack}/api/", "timeout": 5},
    }
    return {"AIRFLOW_CONN_AWS_LOCAL": json.dumps(aws), "AIRFLOW_CONN_SLACK_LOCAL": json.dumps(slack)}


def airflow_env(
    home: Path,
    ports: Ports,
    host: str = "127.0.0.1",
    config_dir: Path | None = None,
    database: dict[str, str] | None = None,
    topology: str = "local",
) -> dict[str, str]:
    """Environment shared by every Airflow process of the local stack; the catalog is ``config_dir``,
    the metadata DB ``database``'s settings (the stack's own Postgres on ``ports.postgres`` by default).
    Per-instance ports come from :func:`components`; the shared ones are the first instance's, which is
    where the api-server fetches running tasks' logs (every instance serves the one shared log folder)."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "16",
        **(database or {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url(ports.postgres)}),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{host}:{ports.api}/execution/",
        "AIRFLOW__API__PORT": str(ports.api),
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__BASE_URL": f"http://{host}:{ports.api}",
        "AIRFLOW__API_AUTH__JWT_SECRET": LOCAL_JWT_SECRET,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(ports.scheduler_health),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports.worker_logs),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports.trigger_logs),
        "ECSJOBS_ENV": "local",
        "ECSJOBS_CONFIG_DIR": str(config_dir or REPO / "config"),  # the shipped catalog by default
        **connections(ports, host),
        **(celery_env(ports, host) if topology == "celery" else {}),
    }


def write_passwords(home: Path) -> None:
    """The simple auth manager reads its users' passwords from this file (admin / admin locally)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "passwords.json").write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
