"""Loading the catalog: layering, and mistakes reported with file, line, column and field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction

from ecsjobs.catalog.loading import load_catalog
from ecsjobs.catalog.problems import CatalogError
from local.settings import REPO

GOOD = """\
description: A job.
start_date: 2026-01-01
task_definition: reports
container: app
"""


def write(config_dir: Path, name: str, text: str) -> Path:
    path = config_dir / "jobs" / f"{name}.yaml"
    path.write_text(text)
    return path


def test_shipped_catalog_loads_in_both_environments():
    for environment in ("local", "prod"):
        catalog = load_catalog(REPO / "config", environment)
        assert catalog.broken == {}
        assert "data_processor" in catalog.jobs


def test_values_layer_defaults_then_job_then_step(config_dir: Path):
    (config_dir / "defaults.yaml").write_text("retries: 3\ntimeout: 1h\nenvironment: {A: d, B: d}\n")
    write(
        config_dir,
        "layered",
        GOOD + "timeout: 30m\nenvironment: {B: job, C: job}\n"
        "steps:\n  first: {}\n  second:\n    retries: 0\n    environment: {C: step}\n",
    )
    steps = load_catalog(config_dir, "local").jobs["layered"].steps
    assert steps["first"].retries == 3
    assert steps["first"].timeout == timedelta(minutes=30)
    assert steps["first"].environment == {"A": "d", "B": "job", "C": "job"}
    assert steps["second"].retries == 0
    assert steps["second"].environment == {"A": "d", "B": "job", "C": "step"}


def test_a_job_without_steps_is_one_step_called_run(config_dir: Path):
    write(config_dir, "single", GOOD)
    assert list(load_catalog(config_dir, "local").jobs["single"].steps) == ["run"]


def test_unknown_key_names_file_line_column_and_a_suggestion(config_dir: Path):
    path = write(config_dir, "typo", GOOD + "steps:\n  load:\n    retires: 2\n")
    catalog = load_catalog(config_dir, "local")
    assert "typo" not in catalog.jobs
    (problem,) = catalog.broken[path]
    assert str(problem) == f"{path}:7:5: steps.load.retires: unknown key 'retires'; did you mean 'retries'?"


def test_a_broken_job_file_does_not_hide_the_others(config_dir: Path):
    write(config_dir, "good", GOOD)
    bad = write(config_dir, "bad", GOOD + "cpu: lots\n")
    catalog = load_catalog(config_dir, "local")
    assert list(catalog.jobs) == ["good"]
    (problem,) = catalog.broken[bad]
    assert (problem.line, problem.field) == (5, "cpu")
    assert "'lots'" in problem.message


def test_all_problems_of_a_file_are_reported_at_once(config_dir: Path):
    bad = write(config_dir, "many", "start_date: someday\nlaunch: fargate-spot\n")
    fields = {p.field for p in load_catalog(config_dir, "local").broken[bad]}
    assert fields == {"description", "start_date", "launch"}


def test_invalid_yaml_names_the_line(config_dir: Path):
    bad = write(config_dir, "broken", GOOD + "environment: {A: 1\n")
    (problem,) = load_catalog(config_dir, "local").broken[bad]
    assert problem.line == 6
    assert problem.message.startswith("invalid YAML")


def test_depends_on_must_name_a_step(config_dir: Path):
    bad = write(config_dir, "deps", GOOD + "steps:\n  extract: {}\n  load:\n    depends_on: [extrakt]\n")
    (problem,) = load_catalog(config_dir, "local").broken[bad]
    assert str(problem).endswith("steps.load.depends_on.0: no step 'extrakt'; did you mean 'extract'?")
    assert (problem.line, problem.column) == (8, 18)


def test_a_bad_environment_file_fails_the_whole_catalog(config_dir: Path):
    (config_dir / "environments" / "local.yaml").write_text("cluster: x\nregoin: us-east-1\n")
    with pytest.raises(CatalogError) as err:
        load_catalog(config_dir, "local")
    message = str(err.value)
    assert "local.yaml:2:1: regoin: unknown key 'regoin'; did you mean 'region'?" in message
    assert "aws_conn_id: required but not set" in message


def test_unknown_environment_lists_the_known_ones(config_dir: Path):
    with pytest.raises(CatalogError, match=r"no such environment 'staging'; known: \['local', 'prod'\]"):
        load_catalog(config_dir, "staging")


# Each case: a job file, then (line, column, field, expected message fragment) of the one problem it has.
MALFORMED = {
    "unknown top-level key": ("descripton: x\n" + GOOD, (1, 1, "descripton", "did you mean 'description'?")),
    "unknown step key": (
        GOOD + "steps:\n  a:\n    comand: [x]\n",
        (7, 5, "steps.a.comand", "did you mean 'command'?"),
    ),
    "unknown alerts key": (
        GOOD + "alerts:\n  chanel: '#x'\n",
        (6, 3, "alerts.chanel", "did you mean 'channel'?"),
    ),
    "unknown param key": (
        GOOD + "params:\n  p:\n    type: string\n    description: d\n    defualt: x\n",
        (9, 5, "params.p.defualt", "did you mean 'default'?"),
    ),
    "missing description": (GOOD.replace("description: A job.\n", ""), (1, 1, "description", "required")),
    "missing start_date": (GOOD.replace("start_date: 2026-01-01\n", ""), (1, 1, "start_date", "required")),
    "missing task_definition": (
        GOOD.replace("task_definition: reports\n", ""),
        (1, 1, "task_definition", "required but not set"),
    ),
    "bad start_date": (GOOD.replace("2026-01-01", "someday"), (2, 13, "start_date", "'someday'")),
    "bad launch": (GOOD + "launch: fargate-spot\n", (5, 9, "launch", "'fargate-spot'")),
    "negative retries": (GOOD + "retries: -1\n", (5, 10, "retries", "greater than or equal to 0")),
    "bad duration": (GOOD + "timeout: soon\n", (5, 10, "timeout", "expected a duration like")),
    "zero duration": (GOOD + "expected_duration: 0s\n", (5, 20, "expected_duration", "positive duration")),
    "bad task definition": (
        GOOD.replace("reports", "reports:latest"),
        (3, 18, "task_definition", "should match pattern"),
    ),
    "command not a list": (GOOD + "command: run it\n", (5, 10, "command", "valid list")),
    "environment not a map": (GOOD + "environment: [A=1]\n", (5, 14, "environment", "valid dictionary")),
    "bad cpu": (GOOD + "cpu: lots\n", (5, 6, "cpu", "'lots'")),
    "fargate cpu size": (GOOD + "cpu: 300\n", (5, 1, "cpu", "not a Fargate size")),
    "fargate memory with cpu": (
        GOOD + "cpu: 256\nmemory: 4096\n",
        (6, 1, "memory", "not allowed with cpu 256 on Fargate"),
    ),
    "literal secret": (
        GOOD + "environment:\n  DB_PASSWORD: hunter2\n",
        (6, 3, "environment.DB_PASSWORD", "task definition's `secrets`"),
    ),
    "literal api key in a step": (
        GOOD + "steps:\n  a:\n    environment:\n      API_KEY: abc\n",
        (8, 7, "steps.a.environment.API_KEY", "looks like a secret"),
    ),
    "depends_on unknown": (
        GOOD + "steps:\n  a: {}\n  b:\n    depends_on: [c]\n",
        (8, 18, "steps.b.depends_on.0", "no step 'c'"),
    ),
    "depends_on cycle": (
        GOOD + "steps:\n  a:\n    depends_on: [b]\n  b:\n    depends_on: [a]\n",
        (7, 5, "steps.a.depends_on", "a -> b -> a"),
    ),
    "unknown network": (GOOD + "network: dmz\n", (5, 1, "network", "no network 'dmz'")),
    "bad timezone": (GOOD + "timezone: Mars/Olympus\n", (5, 11, "timezone", "unknown time zone")),
    "bad alert event": (GOOD + "alerts:\n  events: [failure, boom]\n", (6, 21, "alerts.events.1", "'boom'")),
    "bad param type": (
        GOOD + "params:\n  p:\n    type: text\n    description: d\n",
        (7, 11, "params.p.type", "'text'"),
    ),
    "param without description": (
        GOOD + "params:\n  p:\n    type: string\n",
        (6, 3, "params.p.description", "required"),
    ),
    "param default not in enum": (
        GOOD + "params:\n  p:\n    type: string\n    description: d\n    enum: [a, b]\n    default: c\n",
        (10, 14, "params.p.default", "'c' is not one of"),
    ),
    "param default of wrong type": (
        GOOD + "params:\n  n:\n    type: integer\n    description: d\n    default: ten\n",
        (9, 14, "params.n.default", "is not of type 'integer'"),
    ),
    "scheduled param without default": (
        GOOD + "schedule: cron(0 2 * * ? *)\nparams:\n  p:\n    type: string\n    description: d\n",
        (7, 3, "params.p", "needs a default"),
    ),
    "matrix axis not a template": (
        GOOD + "matrix:\n  region: us-east-1\n",
        (6, 11, "matrix.region", "template"),
    ),
    "empty matrix axis": (GOOD + "matrix:\n  region: []\n", (6, 11, "matrix.region", "at least one value")),
    "empty steps": (GOOD + "steps: {}\n", (5, 8, "steps", "at least 1 item")),
    "bad schedule": (
        GOOD + "schedule: cron(0 2 * * * *)\n",
        (5, 11, "schedule", "exactly one of them must be '?'"),
    ),
    "bad rate": (GOOD + "schedule: rate(1 minutes)\n", (5, 11, "schedule", "needs the unit 'minute'")),
    "not a mapping": ("- a\n- b\n", (1, 1, "", "expected a mapping")),
    "invalid yaml": (GOOD + "environment: {A: 1\n", (6, 1, "", "invalid YAML")),
}


@pytest.mark.parametrize("text, expected", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_job_file(config_dir: Path, text: str, expected: tuple[int, int, str, str]):
    path = write(config_dir, "job", text)
    (problem,) = load_catalog(config_dir, "local").broken[path]
    line, column, field, fragment = expected
    assert (problem.path, problem.line, problem.column, problem.field) == (path, line, column, field), str(
        problem
    )
    assert fragment in problem.message


def test_yaml_words_like_on_yes_no_stay_strings(config_dir: Path):
    """YAML 1.1 would turn these into booleans; in a config file they are values."""
    write(
        config_dir,
        "words",
        GOOD + "params:\n  answer:\n    type: string\n    description: d\n    enum: [yes, no, on, off]\n"
        "    default: no\n",
    )
    param = load_catalog(config_dir, "local").jobs["words"].job.params["answer"]
    assert param.enum == ["yes", "no", "on", "off"]
    assert param.default == "no"


def test_end_date_ends_the_dag_in_the_jobs_time_zone(config_dir: Path):
    """Naive: the job's time zone (as start_date is); with a zone: that instant. Airflow's DAG end_date then
    stops the scheduling (a fire at exactly that instant still runs)."""
    from ecsjobs.build.factory import build_dags

    write(
        config_dir,
        "berlin",
        GOOD + "schedule: cron(0 6 * * ? *)\ntimezone: Europe/Berlin\nend_date: 2027-06-30 06:00:00\n",
    )
    write(config_dir, "utc", GOOD + "schedule: cron(0 6 * * ? *)\nend_date: 2027-06-30T06:00:00+02:00\n")
    catalog = load_catalog(config_dir, "local")
    assert catalog.broken == {}
    dags = build_dags(catalog, register=False)
    expected = datetime(2027, 6, 30, 4, tzinfo=UTC)
    assert dags["berlin"].end_date == expected and dags["utc"].end_date == expected
    timetable = dags["berlin"].timetable
    last = DataInterval.exact(pendulum.datetime(2027, 6, 30, 4, tz="UTC"))
    restriction = TimeRestriction(earliest=None, latest=dags["berlin"].end_date, catchup=True)
    assert timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction) is None
