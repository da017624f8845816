"""Read the job catalog (``config/``): defaults, one environment, and one file per job.

Values layer as defaults, then the job, then the step. Every problem is reported with the file, line and
column it comes from, and a broken job file never hides the other jobs.
"""

from __future__ import annotations

import difflib
import graphlib
import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pendulum
from pydantic import BaseModel, ValidationError

from ecsjobs.catalog.leaks import command_leak, environment_leak
from ecsjobs.catalog.models import (
    FARGATE_LAUNCHES,
    MAX_COMBINATIONS,
    TEMPLATE,
    Environment,
    Job,
    JobSettings,
    Step,
    StepSettings,
    fargate_size_error,
    step_order,
)
from ecsjobs.catalog.prices import PRICES_FILE, Prices
from ecsjobs.catalog.schedules import ScheduleError, parse_schedule
from ecsjobs.catalog.yamlfile import YamlDocument, YamlFileError, load_yaml
from ecsjobs.errors import EcsJobsError

SHOWN_CHARS = 120  # of a value quoted in an error message
CONFIG_DIR_VAR = "ECSJOBS_CONFIG_DIR"
ENVIRONMENT_VAR = "ECSJOBS_ENV"
DEFAULT_ENVIRONMENT = "local"
_JOB_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_ID_LENGTH = 250  # Airflow's limit on DAG and task ids
_STEP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
# Task ids the factory gives its own tasks: a step may not take them.
RESERVED_STEP_NAMES = ("pipeline_metrics", "matrix")
_PARAM_REFERENCE = re.compile(r"\bparams\.([A-Za-z_][A-Za-z0-9_]*)")
# Keys people write for ours: difflib finds typos, not other words.
OTHER_NAMES = {
    "env": "environment",
    "env_vars": "environment",
    "variables": "environment",
    "cmd": "command",
    "args": "command",
    "depends": "depends_on",
    "dependencies": "depends_on",
    "needs": "depends_on",
    "retry": "retries",
    "cron": "schedule",
    "task_def": "task_definition",
    "taskDefinition": "task_definition",
    "tags_ecs": "task_tags",
    "fallback_to_on_demand": "fallback_after",
}
JOB_EXTENSIONS = (".yaml", ".yml")  # compared in lower case
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
    """Paths under the working directory print relative to it, as editors and terminals link them. Links
    are not followed: a file that is a symlink loop still prints."""
    try:
        return Path(os.path.abspath(path)).relative_to(Path.cwd())
    except ValueError:
        return path


class CatalogError(EcsJobsError):
    """The catalog cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        by_file: dict[Path, list[Problem]] = {}
        for problem in problems:
            by_file.setdefault(problem.path, []).append(problem)
        super().__init__(report(by_file))

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.problems,)


MAX_PROBLEMS_PER_FILE = 20  # shown; the rest are counted


def report(problems: dict[Path, list[Problem]]) -> str:
    """The problems, one per line, at most ``MAX_PROBLEMS_PER_FILE`` per file: a file that is wrong
    everywhere (a generated or pasted one) must not bury the others."""
    lines = []
    for file_problems in problems.values():
        lines += [str(problem) for problem in file_problems[:MAX_PROBLEMS_PER_FILE]]
        if len(file_problems) > MAX_PROBLEMS_PER_FILE:
            rest = len(file_problems) - MAX_PROBLEMS_PER_FILE
            lines.append(f"{_relative(file_problems[0].path)}: ... and {rest} more problem(s)")
    return "\n".join(lines)


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
    prices: Prices | None = None  # config/prices.yaml: without it (or the region in it), runs are not costed


def config_dir() -> Path:
    """The config folder: ``$ECSJOBS_CONFIG_DIR``, else ``config/`` at the repository root."""
    if configured := os.environ.get(CONFIG_DIR_VAR):
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "config"


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
    prices = _prices(directory, problems)
    if problems or env is None or defaults is None:
        raise CatalogError(problems)

    jobs: dict[str, JobSpec] = {}
    broken, paths = job_files(directory / "jobs", only)
    for path in paths:
        job_problems: list[Problem] = []
        spec = _load_job(path, defaults_doc, env, job_problems)
        if job_problems or spec is None:
            broken[path] = job_problems
        else:
            jobs[spec.id] = spec
    return Catalog(environment, env, jobs, broken, prices)


def load_prices(directory: Path) -> Prices | None:
    """``prices.yaml`` of the config folder (None if there is none); a problem in it raises."""
    problems: list[Problem] = []
    prices = _prices(directory, problems)
    if problems:
        raise CatalogError(problems)
    return prices


def _prices(directory: Path, problems: list[Problem]) -> Prices | None:
    doc = _read(directory / PRICES_FILE, problems, optional=True)
    return _validate(Prices, doc, problems) if doc else None


def environment_problems(directory: Path) -> dict[Path, list[Problem]]:
    """The problems of every environment file, not only the one in use: a typo in ``prod.yaml`` found while
    working on ``local`` is found before a deployment."""
    found: dict[Path, list[Problem]] = {}
    for path in sorted((directory / "environments").glob("*.yaml")):
        problems: list[Problem] = []
        if doc := _read(path, problems):
            _validate(Environment, doc, problems)
        if problems:
            found[path] = problems
    return found


def job_files(folder: Path, only: str | None = None) -> tuple[dict[Path, list[Problem]], list[Path]]:
    """The job files of ``folder`` (``only``: that job's), and the entries that are not one, as problems.

    A job file is ``<job>.yaml`` or ``<job>.yml``, the extension in any case; the file name is the DAG id.
    Two files for one job (``x.yaml`` beside ``x.yml``) are both refused: neither may silently win. Other
    entries (``notes.txt``, a backup ``x.yaml.bak``, a folder) are reported rather than skipped, since a job
    that is not where it is expected would be missing from Airflow without a word; hidden files (editor swap
    files) are left alone.
    """
    problems: dict[Path, list[Problem]] = {}
    by_job: dict[str, list[Path]] = {}
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as err:
        return {folder: [Problem(folder, 1, 1, "", f"cannot read the folder: {err.strerror}")]}, []
    for entry in entries:
        path = Path(entry.path)
        stem, extension = os.path.splitext(entry.name)
        if entry.name.startswith(".") or (only is not None and stem != only):
            continue
        if extension.lower() not in JOB_EXTENSIONS or _is_folder(entry):
            message = "not a job file and ignored: job files are <job>.yaml or <job>.yml in config/jobs/"
            problems[path] = [Problem(path, 1, 1, "", message)]
            continue
        by_job.setdefault(stem, []).append(path)
    files = []
    for stem, paths in by_job.items():
        if len(paths) == 1:
            files += paths
            continue
        names = " and ".join(p.name for p in paths)
        for path in paths:
            message = f"job {stem!r} is defined by {names}: keep one file per job"
            problems[path] = [Problem(path, 1, 1, "", message)]
    return problems, files


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _load_job(
    path: Path, defaults_doc: YamlDocument | None, env: Environment, problems: list[Problem]
) -> JobSpec | None:
    if not _JOB_ID.match(path.stem):
        problems.append(Problem(path, 1, 1, "", "file name must use only letters, digits, '_', '-', '.'"))
        return None
    if len(path.stem) > MAX_ID_LENGTH:
        message = f"file name is the job's DAG id: at most {MAX_ID_LENGTH} characters, not {len(path.stem)}"
        problems.append(Problem(path, 1, 1, "", message))
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

    for name in raw_steps if job.steps else ():
        if not isinstance(name, str) or not _STEP_NAME.match(name):
            problems.append(
                _problem(
                    doc,
                    ("steps", name),
                    f"step name {name!r}: use 1 to 200 letters, digits, '_' or '-'",
                    False,
                )
            )
        elif name in RESERVED_STEP_NAMES:
            message = f"{name!r} is the name of a task every such job gets; name the step otherwise"
            problems.append(_problem(doc, ("steps", name), message, False))
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


def _check_params(doc: YamlDocument, job: Job, problems: list[Problem]) -> None:
    """Each default against its schema as Airflow checks it (formats included): a scheduled DAG whose
    defaults do not validate is refused by Airflow, which would take every job's DAG with it."""
    for name, param in job.params.items():
        if param.default is None:
            if job.schedule:
                problems.append(
                    _problem(doc, ("params", name), "needs a default: scheduled runs use it", False)
                )
            continue
        try:
            schema = param_schema(job, name)
            jsonschema.validate(param.default, schema, format_checker=jsonschema.FormatChecker())
        except jsonschema.ValidationError as err:
            message = f"default {_shown(param.default)}: {err.message}"
            problems.append(_problem(doc, ("params", name, "default"), message))
        except jsonschema.SchemaError as err:
            problems.append(_problem(doc, ("params", name), f"invalid schema: {err.message}", False))


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


def _check_matrix(doc: YamlDocument, job: Job, problems: list[Problem]) -> None:
    for axis, values in job.matrix.items():
        if isinstance(values, str) and not TEMPLATE.search(values):
            example = "{{ params." + axis + " }}"
            message = f"expected a list of values or a template like '{example}', got {values!r}"
            problems.append(_problem(doc, ("matrix", axis), message))
        elif isinstance(values, list) and not values:
            problems.append(_problem(doc, ("matrix", axis), "expected at least one value"))
    fixed = math.prod(len(values) for values in job.matrix.values() if isinstance(values, list))
    if fixed > MAX_COMBINATIONS:
        message = f"{fixed} combinations; at most {MAX_COMBINATIONS} (Airflow's limit on mapped tasks)"
        problems.append(_problem(doc, ("matrix",), message, False))


def _check_schedule(doc: YamlDocument, job: Job, problems: list[Problem]) -> Any:
    """The job's Airflow schedule (parsed once here, used by the DAG), or None with a problem recorded; a
    schedule that never fires from the job's start date on is one."""
    timezone = job.timezone or "UTC"
    end = end_datetime(job)
    if end is not None and end < start_datetime(job):
        start = f"{job.start_date} 00:00 ({timezone})"
        problems.append(_problem(doc, ("end_date",), f"{end.isoformat()} is before the start date {start}"))
    try:
        return parse_schedule(job.schedule, timezone, start_datetime(job))
    except ScheduleError as err:
        problems.append(_problem(doc, ("schedule",), f"{err} (got {job.schedule!r})"))


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
    if not os.path.lexists(path):
        if not optional:
            problems.append(Problem(path, 1, 1, "", "file not found"))
        return None
    try:
        doc = load_yaml(path)
    except YamlFileError as err:
        problems.append(Problem(path, err.line, err.column, "", f"invalid YAML: {err.message}"))
        return None
    except OSError as err:  # a symlink loop or a dangling link, a folder, no permission
        problems.append(Problem(path, 1, 1, "", f"cannot be read: {err.strerror or err}"))
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
        for number, error in enumerate(err.errors(include_url=False)):
            loc = loc_prefix + tuple(error["loc"])
            line, column = doc.locate(loc, value=error["type"] != "extra_forbidden")
            # Past what a report shows, the plain message: suggestions cost a comparison with every key.
            message = _describe(error, model) if number < MAX_PROBLEMS_PER_FILE else error["msg"]
            problems.append(Problem(doc.path, line, column, ".".join(map(str, loc)), message))
        return None


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        key, known = str(loc[-1]), _model_at(model, loc[:-1]).model_fields
        if OTHER_NAMES.get(key) in known:
            return f"unknown key {key!r}; did you mean {OTHER_NAMES[key]!r}?"
        return f"unknown key {key!r}{_did_you_mean(key, known)}"
    if error["type"] == "missing":
        return "required but not set"
    if loc[-1:] == ("task_definition",) and str(error["input"]).startswith("arn:"):
        name = str(error["input"]).rsplit("/", 1)[-1]
        return f"give the family or family:revision, not the ARN: {name!r}"
    if error["type"] == "value_error":
        return f"{error['msg'].removeprefix('Value error, ')} (got {_shown(error['input'])})"
    return f"{error['msg']} (got {_shown(error['input'])})"


def _shown(value: Any) -> str:
    """A value as an error message shows it: cut short, so one huge value cannot flood the output."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 5] + " ...)"


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
