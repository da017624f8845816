"""The maintenance DAG ``ecsjobs_monitoring_sync``: the sync, daily."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from airflow.sdk import DAG, task

from ecsjobs.catalog.loading import load_catalog
from ecsjobs.deploy.monitoring.apply import sync
from ecsjobs.deploy.monitoring.desired import MONITORING_DAG_ID, MonitoringError
from ecsjobs.deploy.monitoring.plan import SYMBOLS

log = logging.getLogger(__name__)

MANAGED_BY_TAG, MANAGED_BY = "ecsjobs:managed-by", "ecsjobs"
ENVIRONMENT_TAG, JOB_TAG = "ecsjobs:environment", "ecsjobs:job"


def monitoring_dag(environment: str | None) -> DAG:
    """``ecsjobs_monitoring_sync``: the same sync once a day, so alarms follow deployed catalog changes and
    metric baselines follow the recent runs. Paused until someone unpauses it, as every new DAG."""
    with DAG(
        dag_id=MONITORING_DAG_ID,
        description="Sync CloudWatch alarms, dashboard and saved queries with the job catalog.",
        doc_md=__doc__,
        schedule="@daily",
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["maintenance"],
    ) as dag:

        @task
        def sync_monitoring() -> dict[str, int]:
            result = sync(load_catalog(environment=environment))  # the whole catalog, not the parsed one
            for line in str(result).splitlines():
                log.info("%s", line)
            if result.conflicts:
                names = ", ".join(c.name for c in result.conflicts)
                raise MonitoringError(f"alarms not managed by ecsjobs are in the way (left alone): {names}")
            return {action: sum(c.action == action for c in result.changes) for action in SYMBOLS}

        sync_monitoring()
    return dag
