"""Read the job catalog (``config/``): defaults, one environment, and one file per job.

Values layer as defaults, then the job, then the step. Every problem is reported with the file, line and
column it comes from, and a broken job file never hides the other jobs.
"""

from __future__ import annotations

import difflib
import graphlib
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError

from ecsjobs.models import (
    FARGATE_LAUNCHES,
    TEMPLATE,
    Environment,
    Job,
    JobSettings,
    Step,
    StepSettings,
    fargate_size_error,
    literal_secret,
    step_order,
)
from ecsjobs.schedules import ScheduleError, parse_schedule
from ecsjobs.yamlfile import YamlDocument, YamlFileError, load_yaml

CONFIG_DIR_VAR = "ECSJOBS_CONFIG_DIR"
ENVIRONMENT_VAR = "ECSJOBS_ENV"
DEFAULT_ENVIRONMENT = "local"
_JOB_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_STEP_KEYS = set(StepSettings.model_fields)


@dataclass(frozen=True)
class Problem:
    """One mistake in the catalog, located in its file."""

    path: Path
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{_relative(self.path)}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def _relative(path: Path) -> Path:
    """Paths under the working directory print relative to it, as editors and terminals link them."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


class CatalogError(Exception):
    """The catalog cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class JobSpec:
    """A job with its steps' effective settings (defaults < job < step)."""

    id: str
    source: Path
    job: Job
    steps: dict[str, Step]
    schedule: Any = None  # what DAG(schedule=...) takes: None or a timetable


@dataclass(frozen=True)
class Catalog:
    environment_name: str
    environment: Environment
    jobs: dict[str, JobSpec]
    broken: dict[Path, list[Problem]] = field(default_factory=dict)


def config_dir() -> Path:
    """The config folder: ``$ECSJOBS_CONFIG_DIR``, else ``config/`` at the repository root."""
    if configured := os.environ.get(CONFIG_DIR_VAR):
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "config"


def environment_name() -> str:
    return os.environ.get(ENVIRONMENT_VAR) or DEFAULT_ENVIRONMENT


def load_catalog(
    directory: Path | None = None, environment: str | None = None, only: str | None = None
) -> Catalog:
    """Load and validate the catalog (with ``only``, just that job's file: a worker runs one DAG's task).

    Problems in the defaults or environment file affect every job and raise :class:`CatalogError`;
    problems in a job file are kept in ``Catalog.broken`` so the other jobs still load.
    """
    directory = directory or config_dir()
    environment = environment or environment_name()
    problems: list[Problem] = []

    defaults_doc = _read(directory / "defaults.yaml", problems, optional=True)
    defaults = _validate(JobSettings, defaults_doc, problems) if defaults_doc else JobSettings()
    env_path = directory / "environments" / f"{environment}.yaml"
    if not env_path.exists():
        known = sorted(p.stem for p in (directory / "environments").glob("*.yaml"))
        problems.append(Problem(env_path, 1, 1, "", f"no such environment {environment!r}; known: {known}"))
        env = None
    else:
        env_doc = _read(env_path, problems)
        env = _validate(Environment, env_doc, problems) if env_doc else None
    if problems or env is None or defaults is None:
        raise CatalogError(problems)

    jobs: dict[str, JobSpec] = {}
    broken: dict[Path, list[Problem]] = {}
    for path in sorted((directory / "jobs").glob(f"{only or '*'}.y*ml")):
        job_problems: list[Problem] = []
        spec = _load_job(path, defaults_doc, env, job_problems)
        if job_problems or spec is None:
            broken[path] = job_problems
        else:
            jobs[spec.id] = spec
    return Catalog(environment, env, jobs, broken)


def _load_job(
    path: Path, defaults_doc: YamlDocument | None, env: Environment, problems: list[Problem]
) -> JobSpec | None:
    if not _JOB_ID.match(path.stem):
        problems.append(Problem(path, 1, 1, "", "file name must use only letters, digits, '_', '-', '.'"))
        return None
    doc = _read(path, problems)
    if doc is None:
        return None
    job = _validate(Job, doc, problems)
    if job is None:
        return None
    defaults = _step_layer(defaults_doc.data if defaults_doc else {})
    job_layer = _step_layer(doc.data)
    raw_steps = doc.data["steps"] if job.steps is not None else {"run": {}}
    steps: dict[str, Step] = {}
    for name, raw in raw_steps.items():
        merged = _merge(defaults, job_layer, raw or {})
        step = _validate(Step, doc, problems, data=merged, loc_prefix=("steps", name) if job.steps else ())
        if step is not None:
            steps[name] = step
    _check_steps(doc, defaults_doc, env, job, raw_steps, steps, problems)
    _check_params(doc, job, problems)
    _check_matrix(doc, job, problems)
    schedule = _check_schedule(doc, job, problems)
    if problems:
        return None
    return JobSpec(id=path.stem, source=path, job=job, steps=steps, schedule=schedule)


def _check_steps(
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

    for name, step in steps.items():
        for i, upstream in enumerate(step.depends_on):
            if upstream not in raw_steps:
                problem(name, ("depends_on", i), f"no step {upstream!r}{_did_you_mean(upstream, raw_steps)}")
        if step.launch in FARGATE_LAUNCHES and (error := fargate_size_error(step.cpu, step.memory)):
            problem(name, (error[0],), error[1])
        if step.network and step.network not in env.networks:
            known = sorted(env.networks) or "none"
            problem(name, ("network",), f"no network {step.network!r} in this environment; known: {known}")
        for variable, value in step.environment.items():
            if literal_secret(variable, value):
                problem(
                    name,
                    ("environment", variable),
                    f"{variable!r} looks like a secret with a literal value; reference it from the task "
                    "definition's `secrets` (Secrets Manager or SSM parameter) instead of the catalog",
                )
    try:
        step_order({name: [d for d in step.depends_on if d in steps] for name, step in steps.items()})
    except graphlib.CycleError as err:
        cycle = err.args[1]
        problem(cycle[0], ("depends_on",), f"steps depend on each other in a cycle: {' -> '.join(cycle)}")


def _check_params(doc: YamlDocument, job: Job, problems: list[Problem]) -> None:
    for name, param in job.params.items():
        if param.default is None:
            if job.schedule:
                problems.append(
                    _problem(doc, ("params", name), "needs a default: scheduled runs use it", False)
                )
            continue
        try:
            jsonschema.validate(param.default, {"type": param.type, **param.schema_kwargs()})
        except jsonschema.ValidationError as err:
            message = f"default {param.default!r}: {err.message}"
            problems.append(_problem(doc, ("params", name, "default"), message))
        except jsonschema.SchemaError as err:
            problems.append(_problem(doc, ("params", name), f"invalid schema: {err.message}", False))


def _check_matrix(doc: YamlDocument, job: Job, problems: list[Problem]) -> None:
    for axis, values in job.matrix.items():
        if isinstance(values, str) and not TEMPLATE.search(values):
            example = "{{ params." + axis + " }}"
            message = f"expected a list of values or a template like '{example}', got {values!r}"
            problems.append(_problem(doc, ("matrix", axis), message))
        elif isinstance(values, list) and not values:
            problems.append(_problem(doc, ("matrix", axis), "expected at least one value"))


def _check_schedule(doc: YamlDocument, job: Job, problems: list[Problem]) -> Any:
    """The job's Airflow schedule (parsed once here, used by the DAG), or None with a problem recorded."""
    try:
        return parse_schedule(job.schedule, job.timezone or "UTC")
    except ScheduleError as err:
        problems.append(_problem(doc, ("schedule",), f"{err} (got {job.schedule!r})"))


def _problem(doc: YamlDocument, loc: tuple[str | int, ...], message: str, value: bool = True) -> Problem:
    line, column = doc.locate(loc, value=value)
    return Problem(doc.path, line, column, ".".join(map(str, loc)), message)


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


def _step_layer(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (data or {}).items() if k in _STEP_KEYS}


def _merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win key by key; ``environment`` maps merge variable by variable."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key == "environment" and isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


def _read(path: Path, problems: list[Problem], optional: bool = False) -> YamlDocument | None:
    if not path.exists():
        if not optional:
            problems.append(Problem(path, 1, 1, "", "file not found"))
        return None
    try:
        doc = load_yaml(path)
    except YamlFileError as err:
        problems.append(Problem(path, err.line, err.column, "", f"invalid YAML: {err.message}"))
        return None
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        problems.append(Problem(path, 1, 1, "", f"expected a mapping of keys, got {type(doc.data).__name__}"))
        return None
    return doc


def _validate(
    model: type[BaseModel],
    doc: YamlDocument,
    problems: list[Problem],
    data: dict[str, Any] | None = None,
    loc_prefix: tuple[str | int, ...] = (),
):
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as err:
        for error in err.errors():
            loc = loc_prefix + tuple(error["loc"])
            line, column = doc.locate(loc, value=error["type"] != "extra_forbidden")
            problems.append(Problem(doc.path, line, column, ".".join(map(str, loc)), _describe(error, model)))
        return None


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    if error["type"] == "extra_forbidden":
        key = str(error["loc"][-1])
        return f"unknown key {key!r}{_did_you_mean(key, _model_at(model, error['loc'][:-1]).model_fields)}"
    if error["type"] == "missing":
        return "required but not set"
    return f"{error['msg']} (got {error['input']!r})"


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel]:
    """The nested model that a location points into, so suggestions come from the right set of keys."""
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            continue
        nested = [t for t in _flatten(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        if nested:
            model = nested[0]
    return model


def _flatten(annotation: Any) -> list[Any]:
    args = typing.get_args(annotation)
    return [annotation] + [t for arg in args for t in _flatten(arg)] if args else [annotation]


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
