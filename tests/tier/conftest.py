"""The real-components tier: ONE local stack (api-server, scheduler, dag-processor, triggerer, LocalExecutor,
local AWS, local Slack) for the whole tier, started as ``make run`` starts it, with a test catalog.

The test catalog is the shipped ``config/`` plus ``tests/tier/jobs/``, with a 1 s poll interval. Only this
tier's environment speeds Airflow's loops up (``harness.FAST_AIRFLOW``: heartbeats, health thresholds), so
that a restarted component takes over within seconds; nothing else about the stack differs from ``make run``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from local.settings import Ports
from local.stack import Stack
from tests.support import free_port
from tests.tier.harness import FAST_AIRFLOW, OUTPUT, Tier, tier_catalog


@pytest.fixture(scope="session")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    """The one stack of the tier. Its AIRFLOW_HOME (metadata DB, task logs) and component logs stay in
    ``tests/tier/output/airflow-<version>/`` until the next tier run, to look at after a failure."""
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir(parents=True)
    catalog = tier_catalog(tmp_path_factory.mktemp("tier") / "config")
    stack = Stack(
        home=OUTPUT / "airflow",
        ports=Ports(aws=free_port(), slack=free_port(), api=free_port(), postgres=free_port()),
        log_dir=OUTPUT / "stack-logs",
        config_dir=catalog,
        # Free log-server ports too: the default 8793/8794 may be another stack's (the other CI lane's tier).
        extra_env={
            **FAST_AIRFLOW,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        },
    )
    try:
        stack.up(timeout=240)
        tier = Tier(stack, OUTPUT)
        jobs = {job.stem for job in (catalog / "jobs").glob("*.yaml")}
        tier.wait(lambda: jobs <= _dag_ids(tier), 120, "a DAG for every job of the test catalog")
        yield tier
    finally:
        stack.down()


def _dag_ids(tier: Tier) -> set[str]:
    return {d["dag_id"] for d in tier.api.call("GET", "/api/v2/dags?limit=100")["dags"]}
