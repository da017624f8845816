"""Read the job catalog (``config/``): defaults, one environment, and one file per job.

Values layer as defaults, then the job, then the step. Every problem is reported with the file, line and
column it comes from, and a broken job file never hides the other jobs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecsjobs.catalog.checks import check_matrix, check_params, check_schedule, check_steps
from ecsjobs.catalog.environment import Environment
from ecsjobs.catalog.models import Job, JobSettings, Step, StepSettings
from ecsjobs.catalog.prices import PRICES_FILE, Prices
from ecsjobs.catalog.problems import CatalogError, Problem, read_document, validate
from ecsjobs.catalog.yamlfile import YamlDocument

CONFIG_DIR_VAR = "ECSJOBS_CONFIG_DIR"
ENVIRONMENT_VAR = "ECSJOBS_ENV"
DEFAULT_ENVIRONMENT = "local"
_JOB_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_ID_LENGTH = 250  # Airflow's limit on DAG and task ids
JOB_EXTENSIONS = (".yaml", ".yml")  # compared in lower case
_STEP_KEYS = set(StepSettings.model_fields)


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

    defaults_doc = read_document(directory / "defaults.yaml", problems, optional=True)
    defaults = validate(JobSettings, defaults_doc, problems) if defaults_doc else JobSettings()
    env_path = directory / "environments" / f"{environment}.yaml"
    if not env_path.exists():
        known = sorted(p.stem for p in (directory / "environments").glob("*.yaml"))
        problems.append(Problem(env_path, 1, 1, "", f"no such environment {environment!r}; known: {known}"))
        env = None
    else:
        env_doc = read_document(env_path, problems)
        env = validate(Environment, env_doc, problems) if env_doc else None
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
    doc = read_document(directory / PRICES_FILE, problems, optional=True)
    return validate(Prices, doc, problems) if doc else None


def environment_problems(directory: Path) -> dict[Path, list[Problem]]:
    """The problems of every environment file, not only the one in use: a typo in ``prod.yaml`` found while
    working on ``local`` is found before a deployment."""
    found: dict[Path, list[Problem]] = {}
    for path in sorted((directory / "environments").glob("*.yaml")):
        problems: list[Problem] = []
        if doc := read_document(path, problems):
            validate(Environment, doc, problems)
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


def _is_folder(entry: os.DirEntry[str]) -> bool:
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
    doc = read_document(path, problems)
    if doc is None:
        return None
    job = validate(Job, doc, problems)
    if job is None:
        return None
    defaults = _step_layer(defaults_doc.data if defaults_doc else {})
    job_layer = _step_layer(doc.data)
    raw_steps = doc.data["steps"] if job.steps is not None else {"run": {}}
    steps: dict[str, Step] = {}
    for name, raw in raw_steps.items():
        merged = _merge(defaults, job_layer, raw or {})
        step = validate(Step, doc, problems, data=merged, loc_prefix=("steps", name) if job.steps else ())
        if step is not None:
            steps[name] = step
    check_steps(doc, defaults_doc, env, job, raw_steps, steps, problems)
    check_params(doc, job, problems)
    check_matrix(doc, job, problems)
    schedule = check_schedule(doc, job, problems)
    if problems:
        return None
    return JobSpec(id=path.stem, source=path, job=job, steps=steps, schedule=schedule)


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
