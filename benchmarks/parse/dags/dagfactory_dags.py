"""Airflow DAG file for the parse benchmark: dag-factory builds the synthetic jobs' DAGs from its YAML."""

import os

from dagfactory import load_yaml_dags

folder = os.environ["BENCHMARK_DAGFACTORY_DIR"]  # written by benchmarks/parse/synthetic.py
load_yaml_dags(globals_dict=globals(), dags_folder=os.path.join(folder, "dags"), defaults_config_path=folder)
