"""What the DAG files call: choose the environment, load the catalog, build the DAGs or report problems."""

from __future__ import annotations

import os

from airflow.sdk import DAG, get_parsing_context

from ecsjobs.build.factory import build_dags
from ecsjobs.catalog.loading import ENVIRONMENT_VAR, load_catalog
from ecsjobs.catalog.problems import report
from ecsjobs.errors import EcsJobsError

VARIABLE_ENV = "AIRFLOW_VAR_ECSJOBS_ENV"  # the Airflow Variable ecsjobs_env, set through the environment


class CatalogProblems(EcsJobsError):
    """Raised by ``dags/catalog_errors.py`` so that broken job files show as an Airflow import error."""


def environment() -> str | None:
    """``$ECSJOBS_ENV``, unless the Airflow Variable ``ecsjobs_env`` is set in the environment.

    Only the environment-variable form of the Variable (``AIRFLOW_VAR_ECSJOBS_ENV``) is read: DAG files are
    parsed every 30 s and before every task, and a lookup in the metadata DB or a secrets backend (Secrets
    Manager on MWAA) would put network calls into every parse.
    """
    return os.environ.get(VARIABLE_ENV) or os.environ.get(ENVIRONMENT_VAR)


def load_dags() -> dict[str, DAG]:
    """The DAGs of every valid job; a worker running one task reads and builds only that task's job."""
    return build_dags(load_catalog(environment=environment(), only=get_parsing_context().dag_id))


def raise_catalog_problems() -> None:
    """Every job file that has no DAG, with why: the catalog's checks, then Airflow's on each job's DAG."""
    catalog = load_catalog(environment=environment())
    build_dags(catalog, register=False)
    if catalog.broken:
        raise CatalogProblems(
            f"{len(catalog.broken)} job file(s) could not be loaded; their DAGs are missing:\n"
            + report(catalog.broken)
        )
