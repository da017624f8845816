"""Airflow reads this file: one DAG per job of the catalog (`config/`); the logic is in `plugins/ecsjobs`."""

from ecsjobs.build.loader import load_dags

globals().update(load_dags())
