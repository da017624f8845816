"""A synthetic job catalog of any size, and the same jobs in dag-factory's YAML format.

The parse benchmark times building these DAGs with ``ecsjobs`` and with dag-factory, so both formats must
describe the same DAGs. The catalog mixes jobs like the shipped one (single steps and 3-5 step pipelines,
several schedule forms, params, networks, launch types). dag-factory's files are written from the loaded
catalog, each task carrying the ``EcsJobOperator`` arguments of ``ecsjobs.build.factory.step_kwargs``; values
shared by every task go to its ``defaults.yml``, as a dag-factory user would put them. Jobs have plain steps
only: dag-factory has no simple form for the mapped task group that a ``matrix`` job becomes. What ecsjobs
builds on top (alert callbacks, a pipeline's metrics teardown) dag-factory's YAML cannot say; the comparison
leaves it out (``measure.comparable``), so ecsjobs is timed doing more work than dag-factory, not less.
"""

from __future__ import annotations

import argparse
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from ecsjobs.build.factory import step_kwargs
from ecsjobs.catalog.loading import Catalog, load_catalog
from ecsjobs.catalog.models import Job

REPO = Path(__file__).resolve().parents[2]
OPERATOR = "ecsjobs.execution.operators.EcsJobOperator"


def _cron(expression: str, timezone: str = "UTC") -> dict[str, Any]:
    timetable = "airflow.timetables.trigger.CronTriggerTimetable"
    return {"__type__": timetable, "cron": expression, "timezone": timezone}


# Catalog schedule -> (its time zone, what dag-factory must be given for the same timetable).
SCHEDULES: dict[str, tuple[str | None, Any]] = {
    "cron(0 2 * * ? *)": (None, _cron("0 2 * * *")),
    "cron(0 7 ? * MON-FRI *)": ("America/New_York", _cron("0 7 * * 1-5", "America/New_York")),
    "0 */6 * * *": (None, _cron("0 */6 * * *")),
    "rate(1 hour)": (
        None,
        {
            "__type__": "airflow.timetables.trigger.DeltaTriggerTimetable",
            "delta": {"__type__": "datetime.timedelta", "hours": 1},
        },
    ),
    "cron(0 22 L * ? *)": (
        None,
        {
            "__type__": "ecsjobs.catalog.schedules.EventBridgeCronTimetable",
            "expression": "cron(0 22 L * ? *)",
        },
    ),
    "none": (None, "none"),
}
SINGLE = {"run": []}
CHAIN = {"extract": [], "transform": ["extract"], "load": ["transform"]}
FAN_IN = {"extract_a": [], "extract_b": [], "transform": ["extract_a", "extract_b"], "load": ["transform"]}
LONG = {
    "snapshot": [],
    "reconcile": ["snapshot"],
    "export": ["reconcile"],
    "publish": ["export"],
    "notify": ["publish"],
}
SHAPES: list[dict[str, list[str]]] = [SINGLE] * 6 + [CHAIN, CHAIN, FAN_IN, LONG]  # 2.1 steps per job
LAUNCHES = ("fargate", "fargate_spot", "ec2_spot", "ec2")


def write(directory: Path, jobs: int) -> None:
    """The catalog in ``directory/catalog``, the same jobs for dag-factory in ``directory/dagfactory``."""
    write_catalog(directory / "catalog", jobs)
    catalog = load_catalog(directory / "catalog", "local")
    if catalog.broken:
        raise ValueError(f"the synthetic catalog has broken files: {catalog.broken}")
    write_dagfactory(catalog, directory / "dagfactory")


def job_id(index: int) -> str:
    return f"job_{index:04d}"


def write_catalog(directory: Path, jobs: int) -> None:
    """``defaults.yaml`` and ``environments/`` as shipped, and ``jobs`` job files."""
    (directory / "jobs").mkdir(parents=True)
    shutil.copy(REPO / "config" / "defaults.yaml", directory / "defaults.yaml")
    shutil.copytree(REPO / "config" / "environments", directory / "environments")
    for index in range(jobs):
        _dump(job_document(index), directory / "jobs" / f"{job_id(index)}.yaml")


def job_document(index: int) -> dict[str, Any]:
    schedule = list(SCHEDULES)[index % len(SCHEDULES)]
    shape = SHAPES[index % len(SHAPES)]
    doc: dict[str, Any] = {
        "description": f"Synthetic job {index} with {len(shape)} step(s).",
        "owner": f"team-{index % 5}",
        "tags": ["synthetic", f"group-{index % 8}"],
        "schedule": schedule,
        "start_date": "2026-01-01",
        "task_definition": f"family-{index % 50}",
        "container": "app",
        "environment": {"RUN_DATE": "{{ ds }}"},
    }
    if timezone := SCHEDULES[schedule][0]:
        doc["timezone"] = timezone
    if index % 5 == 0:
        doc["params"] = {
            "batch_size": {"type": "integer", "minimum": 1, "default": 500, "description": "Rows per batch."}
        }
    if index % 7 == 0:
        doc["network"] = "restricted"
    if index % 4 == 1:
        doc["retries"] = 1
    if shape is SINGLE:
        return doc | _step_settings(index)
    doc["max_active_runs"] = 1
    doc["steps"] = {
        name: {"command": ["run", name, "--date", "{{ ds }}"], **_step_settings(index + position)}
        | ({"depends_on": upstream} if upstream else {})
        for position, (name, upstream) in enumerate(shape.items())
    }
    return doc


def _step_settings(seed: int) -> dict[str, Any]:
    settings: dict[str, Any] = {"launch": LAUNCHES[seed % len(LAUNCHES)]}
    if seed % 3 == 0:
        settings |= {"cpu": 1024, "memory": 4096}
    if seed % 5 == 2:
        settings["timeout"] = "45m"
    return settings


def write_dagfactory(catalog: Catalog, directory: Path) -> None:
    """The catalog's jobs as dag-factory files: ``defaults.yml`` and ``dags/<job>.yml``."""
    env = catalog.environment
    kwargs = {
        job: {name: step_kwargs(step, env, job) for name, step in spec.steps.items()}
        for job, spec in catalog.jobs.items()
    }
    every_task = [task for tasks in kwargs.values() for task in tasks.values()]
    common = {
        key: value
        for key, value in every_task[0].items()
        if all(t.get(key, ...) == value for t in every_task)
    }
    (directory / "dags").mkdir(parents=True)
    _dump({"default_args": _encode(common)}, directory / "defaults.yml")
    for job, spec in catalog.jobs.items():
        tasks = {
            name: {"operator": OPERATOR, "dependencies": spec.steps[name].depends_on}
            | _encode({key: value for key, value in task.items() if key not in common})
            for name, task in kwargs[job].items()
        }
        _dump({job: _dag_config(spec.job) | {"tasks": tasks}}, directory / "dags" / f"{job}.yml")


def _dag_config(job: Job) -> dict[str, Any]:
    """The DAG arguments ``ecsjobs.build.factory.build_dag`` passes, as dag-factory keys."""
    return {
        "description": job.description.strip().splitlines()[0],
        "schedule": SCHEDULES[job.schedule][1],
        "timezone": job.timezone or "UTC",
        "start_date": job.start_date,
        "catchup": bool(job.catchup),
        "max_active_runs": job.max_active_runs or 16,
        "tags": job.tags,
        "default_args": {"owner": job.owner or "airflow"},
        "params": {
            name: {"__type__": "airflow.sdk.Param", "default": p.default, "description": p.description}
            | p.schema_kwargs()
            for name, p in job.params.items()
        },
    }


def _encode(value: Any) -> Any:
    """Durations in dag-factory's ``__type__`` form; everything else is plain YAML."""
    if isinstance(value, timedelta):
        return {"__type__": "datetime.timedelta", "seconds": value.total_seconds()}
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    return value


def _dump(data: dict[str, Any], path: Path) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    write(args.directory, args.jobs)
