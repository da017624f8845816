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
DEFAULT_PORTS = {"aws": 4566, "slack": 4567, "api": 8080}
LOCAL_AWS_PORT = int(os.environ.get("LOCAL_AWS_PORT", DEFAULT_PORTS["aws"]))
LOCAL_SLACK_PORT = int(os.environ.get("LOCAL_SLACK_PORT", DEFAULT_PORTS["slack"]))
API_PORT = int(os.environ.get("AIRFLOW_API_PORT", DEFAULT_PORTS["api"]))
# `make run`'s metadata DB (local/postgres.py); not 5432, which a Postgres of the user's own may have taken.
LOCAL_POSTGRES_PORT = int(os.environ.get("LOCAL_POSTGRES_PORT", 5433))
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"
# Local only: every Airflow component must share one JWT secret or tasks fail with "Invalid auth token".
LOCAL_JWT_SECRET = "local-stack-jwt-secret-not-for-production"
LOCAL_SLACK_TOKEN = "xoxb-local-token"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


@dataclass(frozen=True)
class Ports:
    aws: int = LOCAL_AWS_PORT
    slack: int = LOCAL_SLACK_PORT
    api: int = API_PORT
    postgres: int = LOCAL_POSTGRES_PORT


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
) -> dict[str, str]:
    """Environment shared by every Airflow process of the local stack; the catalog is ``config_dir``,
    the metadata DB ``database``'s settings (the stack's own Postgres on ``ports.postgres`` by default)."""
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
        "ECSJOBS_ENV": "local",
        "ECSJOBS_CONFIG_DIR": str(config_dir or REPO / "config"),  # the shipped catalog by default
        **connections(ports, host),
    }


def write_passwords(home: Path) -> None:
    """The simple auth manager reads its users' passwords from this file (admin / admin locally)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "passwords.json").write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
