"""Airflow reads this file: the maintenance DAG that keeps CloudWatch alarms, dashboard and saved queries in
step with the catalog (``ecsjobs.monitoring``; ``python -m ecsjobs sync-monitoring`` runs it by hand)."""

from ecsjobs.loader import environment
from ecsjobs.monitoring import monitoring_dag

dag = monitoring_dag(environment())
