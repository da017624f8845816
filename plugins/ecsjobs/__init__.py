"""Run the job catalog's ECS batch jobs from Airflow."""
