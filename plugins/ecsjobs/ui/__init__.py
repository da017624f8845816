"""The Airflow UI's Jobs page."""
