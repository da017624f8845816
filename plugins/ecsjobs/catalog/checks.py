"""The checks a job's file gets beyond its schema: its steps (names, dependencies, sizes, networks,
literal secrets, tags), params, matrix and schedule; and the dates its DAG runs between."""

from __future__ import annotations

import graphlib
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import pendulum

from ecsjobs.catalog.cron import ScheduleError
from ecsjobs.catalog.environment import Environment
from ecsjobs.catalog.leaks import command_leak, environment_leak
from ecsjobs.catalog.models import (
    FARGATE_LAUNCHES,
    MAX_COMBINATIONS,
    TEMPLATE,
    Job,
    Step,
    fargate_size_error,
    step_order,
)
from ecsjobs.catalog.problems import Problem, did_you_mean, problem_at, shown
from ecsjobs.catalog.schedules import parse_schedule
from ecsjobs.catalog.yamlfile import YamlDocument

_STEP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
# Task ids the factory gives its own tasks: a step may not take them.
RESERVED_STEP_NAMES = ("pipeline_metrics", "matrix")
_PARAM_REFERENCE = re.compile(r"\bparams\.([A-Za-z_][A-Za-z0-9_]*)")


def check_steps(
    doc: YamlDocument,
    defaults_doc: YamlDocument | None,
    env: Environment,
    job: Job,
    raw_steps: dict[str, Any],
    steps: dict[str, Step],
    problems: list[Problem],
) -> None:
    def problem(step: str, keys: tuple[str | int, ...], message: str) -> None:
        path, line, column = _where(doc, defaults_doc, step if job.steps else None, keys)
        field = ".".join(map(str, (("steps", step) if job.steps else ()) + keys))
        problems.append(Problem(path, line, column, field, message))

    for name in raw_steps if job.steps else ():
        if not isinstance(name, str) or not _STEP_NAME.match(name):
            problems.append(
                problem_at(
                    doc,
                    ("steps", name),
                    f"step name {name!r}: use 1 to 200 letters, digits, '_' or '-'",
                    False,
                )
            )
        elif name in RESERVED_STEP_NAMES:
            message = f"{name!r} is the name of a task every such job gets; name the step otherwise"
            problems.append(problem_at(doc, ("steps", name), message, False))
    for name, step in steps.items():
        for i, upstream in enumerate(step.depends_on):
            if upstream not in raw_steps:
                problem(name, ("depends_on", i), f"no step {upstream!r}{did_you_mean(upstream, raw_steps)}")
        if step.launch in FARGATE_LAUNCHES and (error := fargate_size_error(step.cpu, step.memory)):
            problem(name, (error[0],), error[1])
        if step.network and step.network not in env.networks:
            known = sorted(env.networks) or "none"
            problem(name, ("network",), f"no network {step.network!r} in this environment; known: {known}")
        for variable, value in step.environment.items():
            if reason := environment_leak(variable, value):
                problem(name, ("environment", variable), reason)
        if step.command and (leak := command_leak(step.command)):
            problem(name, ("command", leak[0]), leak[1])
        if step.timeout and step.expected_duration and step.timeout < step.expected_duration:
            message = f"{step.timeout} is shorter than expected_duration {step.expected_duration}"
            problem(name, ("timeout",), message + ": the step would be stopped before it usually ends")
        for tag in step.task_tags:
            if tag.lower().startswith("aws:"):
                problem(name, ("task_tags", tag), "tags starting with 'aws:' are reserved; ECS refuses them")
    try:
        step_order({name: [d for d in step.depends_on if d in steps] for name, step in steps.items()})
    except graphlib.CycleError as err:
        cycle = err.args[1]
        problem(cycle[0], ("depends_on",), f"steps depend on each other in a cycle: {' -> '.join(cycle)}")


def check_params(doc: YamlDocument, job: Job, problems: list[Problem]) -> None:
    """Each default against its schema as Airflow checks it (formats included): a scheduled DAG whose
    defaults do not validate is refused by Airflow, which would take every job's DAG with it."""
    for name, param in job.params.items():
        if param.default is None:
            if job.schedule:
                problems.append(
                    problem_at(doc, ("params", name), "needs a default: scheduled runs use it", False)
                )
            continue
        try:
            schema = param_schema(job, name)
            jsonschema.validate(param.default, schema, format_checker=jsonschema.FormatChecker())
        except jsonschema.ValidationError as err:
            message = f"default {shown(param.default)}: {err.message}"
            problems.append(problem_at(doc, ("params", name, "default"), message))
        except jsonschema.SchemaError as err:
            problems.append(problem_at(doc, ("params", name), f"invalid schema: {err.message}", False))


def param_schema(job: Job, name: str) -> dict[str, Any]:
    """The JSON Schema of a run parameter, as Airflow's ``Param`` gets it: a list that feeds the matrix holds
    at least one value and at most what the combination cap leaves, so the trigger form and the REST API
    refuse an empty or oversized list before a run exists."""
    param = job.params[name]
    schema = {"type": param.type, **param.schema_kwargs()}
    if param.type == "array" and name in matrix_params(job):
        schema["minItems"] = 1
        schema["maxItems"] = matrix_params(job)[name]
    return schema


def matrix_params(job: Job) -> dict[str, int]:
    """The params a matrix axis templates (``{{ params.customers }}``), each with the most values it may
    hold: the combination cap divided by the other axes' fixed sizes."""
    fixed = [len(values) for values in job.matrix.values() if isinstance(values, list) and values]
    room = max(1, MAX_COMBINATIONS // max(1, math.prod(fixed)))
    return {
        name: room
        for values in job.matrix.values()
        if isinstance(values, str)
        for name in _PARAM_REFERENCE.findall(values)
        if name in job.params
    }


def check_matrix(doc: YamlDocument, job: Job, problems: list[Problem]) -> None:
    for axis, values in job.matrix.items():
        if isinstance(values, str) and not TEMPLATE.search(values):
            example = "{{ params." + axis + " }}"
            message = f"expected a list of values or a template like '{example}', got {values!r}"
            problems.append(problem_at(doc, ("matrix", axis), message))
        elif isinstance(values, list) and not values:
            problems.append(problem_at(doc, ("matrix", axis), "expected at least one value"))
    fixed = math.prod(len(values) for values in job.matrix.values() if isinstance(values, list))
    if fixed > MAX_COMBINATIONS:
        message = f"{fixed} combinations; at most {MAX_COMBINATIONS} (Airflow's limit on mapped tasks)"
        problems.append(problem_at(doc, ("matrix",), message, False))


def check_schedule(doc: YamlDocument, job: Job, problems: list[Problem]) -> Any:
    """The job's Airflow schedule (parsed once here, used by the DAG), or None with a problem recorded; a
    schedule that never fires from the job's start date on is one."""
    timezone = job.timezone or "UTC"
    end = end_datetime(job)
    if end is not None and end < start_datetime(job):
        start = f"{job.start_date} 00:00 ({timezone})"
        problems.append(problem_at(doc, ("end_date",), f"{end.isoformat()} is before the start date {start}"))
    try:
        return parse_schedule(job.schedule, timezone, start_datetime(job))
    except ScheduleError as err:
        problems.append(problem_at(doc, ("schedule",), f"{err} (got {job.schedule!r})"))


def end_datetime(job: Job) -> pendulum.DateTime | None:
    """The DAG's ``end_date``: the job's, read in its time zone when it names none."""
    if job.end_date is None:
        return None
    end = job.end_date
    return pendulum.instance(end) if end.tzinfo else pendulum.instance(end, tz=job.timezone or "UTC")


def start_datetime(job: Job) -> pendulum.DateTime:
    """The DAG's ``start_date``: midnight of the job's start date in its time zone."""
    start = job.start_date
    return pendulum.datetime(start.year, start.month, start.day, tz=job.timezone or "UTC")


def _where(
    doc: YamlDocument, defaults_doc: YamlDocument | None, step: str | None, keys: tuple[str | int, ...]
) -> tuple[Path, int, int]:
    """The file and position a step's effective setting came from: the step, the job, or the defaults."""
    candidates = [(doc, ("steps", step, *keys))] if step else []
    candidates += [(doc, keys)] + ([(defaults_doc, keys)] if defaults_doc else [])
    for source, loc in candidates:
        for end in range(len(loc), 0, -1):
            if loc[:end] in source.positions and (source is not doc or end > (2 if step else 0)):
                return (source.path, *source.positions[loc[:end]])
    return (doc.path, *doc.locate(("steps", step) if step else ()))
