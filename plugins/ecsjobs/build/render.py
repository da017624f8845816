"""Dry run: the RunTask requests a job's steps would send for one logical date, rendered as Airflow would.

Uses the job's real DAG and operators, Airflow's Jinja environment and the same context keys a task sees
(``ds``, ``logical_date``, ``data_interval_*``, ``params``, ``macros``, ``matrix``), so what it prints is what
the operator sends. Values only known at run time (``startedBy``, XCom, Variables) are not available here.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pendulum
from airflow.sdk.exceptions import ParamValidationError
from airflow.sdk.execution_time.context import MacrosAccessor
from airflow.timetables.base import DataInterval

from ecsjobs.build.factory import build_dag
from ecsjobs.build.matrix import combinations
from ecsjobs.catalog.environment import Environment
from ecsjobs.catalog.loading import JobSpec
from ecsjobs.catalog.models import step_order
from ecsjobs.execution.operators import EcsJobOperator
from ecsjobs.execution.starting import run_task_request


def render_requests(
    spec: JobSpec, env: Environment, env_name: str, logical_date: datetime, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """One entry per ECS task the run would start: the step's effective settings (defaults < job < step),
    its matrix combination and the RunTask request."""
    dag = build_dag(spec, env, env_name)
    # in UTC, as Airflow's context holds it (the metadata DB keeps UTC): a job's time zone moves no template
    logical_date = pendulum.instance(
        logical_date if logical_date.tzinfo else logical_date.replace(tzinfo=UTC)
    )
    logical_date = logical_date.in_timezone("UTC")
    run_params = copy.deepcopy(dag.params)
    unknown = set(params) - set(run_params)
    if unknown:
        raise ValueError(f"unknown param(s) {sorted(unknown)}; the job has {sorted(run_params) or 'none'}")
    try:
        run_params.update(params)  # Airflow 3.2 validates here, 3.3 in validate()
        resolved = run_params.validate()
    except ParamValidationError as err:
        raise ValueError(str(err)) from None
    infer = getattr(dag.timetable, "infer_manual_data_interval", None)  # a job with no schedule has none
    interval = infer(run_after=logical_date) if infer else DataInterval(logical_date, logical_date)
    context: dict[str, Any] = {
        "dag": dag,
        "params": resolved,
        "macros": MacrosAccessor(),
        "run_id": f"manual__{logical_date.isoformat()}",
        "ti": SimpleNamespace(try_number=1),  # the request of the first try
        "logical_date": logical_date,
        "ds": logical_date.strftime("%Y-%m-%d"),
        "ds_nodash": logical_date.strftime("%Y%m%d"),
        "ts": logical_date.isoformat(),
        "ts_nodash": logical_date.strftime("%Y%m%dT%H%M%S"),
        "data_interval_start": interval.start,
        "data_interval_end": interval.end,
    }
    fan_out = combinations(spec.job.matrix, context) if spec.job.matrix else [None]
    by_step = {
        task.task_id.rsplit(".", 1)[-1]: task for task in dag.tasks if isinstance(task, EcsJobOperator)
    }
    order = step_order({name: step.depends_on for name, step in spec.steps.items()})
    settings = {name: step.model_dump(mode="json", exclude_none=True) for name, step in spec.steps.items()}
    requests = []
    for map_index, combination in enumerate(fan_out):
        for name in order:
            operator = copy.deepcopy(by_step[name])
            operator.matrix = combination
            operator.render_template_fields({**context, "task": operator}, dag.get_template_env())
            entry: dict[str, Any] = {"step": name, "settings": settings[name]}
            if combination is not None:
                entry.update(map_index=map_index, matrix=combination)
            requests.append({**entry, "request": run_task_request(operator)})
    return requests
