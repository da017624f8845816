"""Airflow DAG file, the parse benchmark's baseline: the modules dags/ecs_jobs.py imports; no DAG built."""

import airflow.sdk  # noqa: F401
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator  # noqa: F401

import ecsjobs.build.factory  # noqa: F401
import ecsjobs.build.loader  # noqa: F401
