"""One parse of one DAG file in a fresh interpreter, as Airflow's DAG processor parses it.

``measure.py DAG_FILE RESULT_JSON``, started by ``run.py``. ``built_at`` (a wall-clock instant, for the
whole process's time) includes importing Airflow; ``parse_s`` does not: the DAG processor forks its parsing
children from a process that has imported Airflow already, so ``parse_s`` is what each of its parses pays.
The DAGs are then serialized as the DAG processor stores them; the digest of that form, without the parts
that name where a DAG came from, lets ``run.py`` check that two generators built the same DAGs.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

# Serialized DAG keys that differ by generator but not by what runs: dag-factory keeps the settings shared
# by every task in ``default_args`` (each task's own serialized form carries the effective values) and
# writes its own ``doc_md``.
_SOURCE_KEYS = ("default_args", "doc_md", "fileloc", "relative_fileloc")


def measure(dag_file: Path) -> dict[str, Any]:
    from airflow import plugins_manager
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.serialization.serialized_objects import DagSerialization

    start = time.perf_counter()
    bag = BundleDagBag(
        dag_folder=dag_file, bundle_path=dag_file.parent, bundle_name="benchmark", load_op_links=False
    )
    parse_s = time.perf_counter() - start
    built_at = time.time()
    plugins_manager.get_timetables_plugins()  # loaded once per DAG processor, not per parse
    start = time.perf_counter()
    serialized = {dag_id: DagSerialization.to_dict(dag)["dag"] for dag_id, dag in bag.dags.items()}
    serialize_s = time.perf_counter() - start
    return {
        "built_at": built_at,
        "parse_s": parse_s,
        "serialize_s": serialize_s,
        "dags": len(bag.dags),
        "tasks": sum(1 for dag in bag.dags.values() for task in dag.tasks if not task.is_teardown),
        "errors": bag.import_errors,
        "digest": _digest(serialized),
    }


def _digest(serialized: dict[str, dict[str, Any]]) -> str:
    comparable = {}
    for dag_id, dag in serialized.items():
        dag = {key: value for key, value in dag.items() if key not in _SOURCE_KEYS}
        dag["tags"] = sorted(set(dag.get("tags", [])) - {"dagfactory"})  # dag-factory tags what it builds
        tasks = [task["__var"] for task in dag.get("tasks", [])]
        teardowns = {task["task_id"] for task in tasks if task.get("is_teardown")}
        dag["tasks"] = [
            _comparable_task(task, teardowns) for task in tasks if task["task_id"] not in teardowns
        ]
        dag["task_group"] = _without(dag.get("task_group"), teardowns)
        comparable[dag_id] = dag
    return hashlib.sha256(json.dumps(comparable, sort_keys=True, default=str).encode()).hexdigest()


def _comparable_task(task: dict[str, Any], teardowns: set[str]) -> dict[str, Any]:
    """A serialized task without what only ecsjobs builds: alert callbacks, edges to teardowns."""
    task = {key: value for key, value in task.items() if not key.startswith("has_on_")}
    if downstream := sorted(set(task.pop("downstream_task_ids", ())) - teardowns):
        task["downstream_task_ids"] = downstream
    return task


def _without(group: Any, task_ids: set[str]) -> Any:
    """The serialized task group tree without ``task_ids`` (as children and in edge lists)."""
    if isinstance(group, dict):
        return {key: _without(value, task_ids) for key, value in group.items() if key not in task_ids}
    if isinstance(group, list):
        return [_without(item, task_ids) for item in group if item not in task_ids]
    return group


if __name__ == "__main__":
    dag_file, result = map(Path, sys.argv[1:3])
    result.write_text(json.dumps(measure(dag_file)))
