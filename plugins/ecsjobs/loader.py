"""What the DAG files call: choose the environment, load the catalog, build the DAGs or report problems."""

from __future__ import annotations

import logging
import os

from airflow.sdk import DAG, get_parsing_context

from ecsjobs.catalog import ENVIRONMENT_VAR, Catalog, load_catalog
from ecsjobs.factory import build_dags

log = logging.getLogger(__name__)
ENVIRONMENT_VARIABLE = "ecsjobs_env"  # Airflow Variable that overrides $ECSJOBS_ENV


class CatalogProblems(Exception):
    """Raised by ``dags/catalog_errors.py`` so that broken job files show as an Airflow import error."""


def environment() -> str | None:
    """``$ECSJOBS_ENV``, unless the Airflow Variable ``ecsjobs_env`` is set (e.g. in Secrets Manager)."""
    try:
        from airflow.sdk import Variable

        override = Variable.get(ENVIRONMENT_VARIABLE, default=None)
    except Exception:  # no Airflow context (e.g. the CLI) or no reachable backend: the variable decides
        log.debug("Airflow Variable %s not readable here", ENVIRONMENT_VARIABLE, exc_info=True)
        override = None
    return override or os.environ.get(ENVIRONMENT_VAR)


def catalog() -> Catalog:
    return load_catalog(environment=environment())


def load_dags() -> dict[str, DAG]:
    """The DAGs of every valid job; a worker running one task builds only that task's DAG."""
    return build_dags(catalog(), only=get_parsing_context().dag_id)


def raise_catalog_problems() -> None:
    broken = catalog().broken
    if broken:
        problems = [str(problem) for file_problems in broken.values() for problem in file_problems]
        raise CatalogProblems(
            f"{len(broken)} job file(s) could not be loaded; their DAGs are missing:\n" + "\n".join(problems)
        )
