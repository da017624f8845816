"""Airflow shows broken job files as an import error of this file; dags/ecs_jobs.py loads the other DAGs."""

from ecsjobs.build.loader import raise_catalog_problems

raise_catalog_problems()
