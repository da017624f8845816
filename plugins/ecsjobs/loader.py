"""What the DAG file calls: load the catalog, report what is broken, build the DAGs."""

from __future__ import annotations

import logging

from airflow.sdk import DAG

from ecsjobs.catalog import load_catalog
from ecsjobs.factory import build_dags

log = logging.getLogger(__name__)


def load_dags() -> dict[str, DAG]:
    catalog = load_catalog()
    for problems in catalog.broken.values():
        for problem in problems:
            log.error("job catalog: %s", problem)
    return build_dags(catalog)
