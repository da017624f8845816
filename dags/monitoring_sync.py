"""Airflow reads this file: the maintenance DAG that keeps CloudWatch alarms, dashboard and saved queries in
step with the catalog (``ecsjobs.deploy.monitoring``; ``python -m ecsjobs sync-monitoring`` runs it by
hand)."""

from ecsjobs.build.loader import environment
from ecsjobs.deploy.monitoring.dag import monitoring_dag

dag = monitoring_dag(environment())
