"""Catalogs as people break them: every mistake is a located problem of its own file, never a traceback, never
the loss of another job, at a bounded cost; and what Airflow would refuse, ``validate`` refuses first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ecsjobs.build.factory import build_dags
from ecsjobs.catalog.loading import load_catalog
from local.settings import REPO
from tests.unit.catalog.test_loading import GOOD, write

SCHEDULED = GOOD + "schedule: cron(0 2 * * ? *)\n"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)

# Each case: a job file (text, or bytes when it is no text at all), then (line, column, field, fragment of the
# message) of the one problem it has.
MALFORMED = {
    "duplicate key": (
        GOOD + "retries: 1\nretries: 2\n",
        (6, 1, "", "duplicate key 'retries', first at line 5"),
    ),
    "duplicate step": (
        GOOD + "steps:\n  a: {}\n  a: {retries: 1}\n",
        (7, 3, "", "duplicate key 'a', first at line 6"),
    ),
    "duplicate environment variable": (
        GOOD + "environment:\n  A: x\n  A: y\n",
        (7, 3, "", "duplicate key 'A'"),
    ),
    "tab": (GOOD + "environment:\n\tA: x\n", (6, 1, "", "a tab: YAML indents with spaces")),
    "control character": (GOOD + "owner: a\x07b\n", (5, 9, "", "character U+0007 is not allowed")),
    "not UTF-8": (GOOD.encode() + b"owner: caf\xe9\n", (5, 11, "", "not UTF-8 (byte 0xe9)")),
    "recursive alias": (
        GOOD + "tags: &t [a, *t]\n",
        (5, 7, "", "an alias refers to the value that contains it"),
    ),
    "alias bomb": (GOOD + BOMB, (9, 4, "", "expand this value to more than 10,000 values")),
    "deep nesting": (GOOD + "tags: " + "[" * 60 + "]" * 60 + "\n", (5, 56, "", "more than 50 levels deep")),
    "huge duration": (GOOD + "timeout: 99999999999999d\n", (5, 10, "timeout", "longer than any duration")),
    "step name with a space": (GOOD + "steps:\n  load data: {}\n", (6, 3, "steps.load data", "step name")),
    "step name with an emoji": (GOOD + "steps:\n  load🚀: {}\n", (6, 3, "steps.load🚀", "step name")),
    "step name of 300 characters": (
        GOOD + f"steps:\n  {'s' * 300}: {{}}\n",
        (6, 3, f"steps.{'s' * 300}", "1 to 200 letters"),
    ),
    "step named like a generated task": (
        GOOD + "steps:\n  extract: {}\n  pipeline_metrics: {}\n",
        (7, 3, "steps.pipeline_metrics", "name of a task"),
    ),
    "scheduled param default not a date": (
        SCHEDULED
        + "params:\n  day:\n    type: string\n    format: date\n    description: d\n    default: soon\n",
        (11, 14, "params.day.default", "is not a 'date'"),
    ),
    "schedule that never fires": (
        GOOD + "schedule: cron(0 2 30 2 ? *)\n",
        (5, 11, "schedule", "never fires on or after the start date"),
    ),
    "schedule years before the start date": (
        GOOD + "schedule: cron(0 2 * * ? 2020)\n",
        (5, 11, "schedule", "never fires on or after the start date 2026-01-01"),
    ),
    "end before the start": (
        GOOD + "end_date: 2025-12-31T23:00:00Z\n",
        (5, 11, "end_date", "is before the start date 2026-01-01 00:00 (UTC)"),
    ),
    "AWS access key id": (
        GOOD + "environment:\n  SOURCE: AKIAIOSFODNN7EXAMPLE\n",
        (6, 3, "environment.SOURCE", "an AWS access key id"),
    ),
    "temporary AWS key id": (
        GOOD + "environment:\n  SOURCE: ASIAIOSFODNN7EXAMPLE\n",
        (6, 3, "environment.SOURCE", "an AWS access key id"),
    ),
    "OpenAI-style key": (
        GOOD + "environment:\n  MODEL_AUTH: sk-proj-abcdefghijklmnopqrstuvwx\n",
        (6, 3, "environment.MODEL_AUTH", "an API key"),
    ),
    "Slack bot token": (
        GOOD + "environment:\n  NOTIFY: xoxb-1234567890-abcdefghij\n",
        (6, 3, "environment.NOTIFY", "a Slack token"),
    ),
    "GitHub token": (
        GOOD + "environment:\n  REPO_AUTH: ghp_abcdefghijklmnopqrstuvwxyz0123456789\n",
        (6, 3, "environment.REPO_AUTH", "a GitHub token"),
    ),
    "password in a URL": (
        GOOD + "environment:\n  DATABASE_URL: postgres://etl:hunter2@db.internal/warehouse\n",
        (6, 3, "environment.DATABASE_URL", "a password in a URL"),
    ),
    "password argument": (
        GOOD + "command: [load, --db-password, hunter2]\n",
        (5, 17, "command.1", "'--db-password' passes a literal secret"),
    ),
    "password argument with =": (
        GOOD + "command: [load, --password=hunter2]\n",
        (5, 17, "command.1", "'--password' passes a literal secret"),
    ),
    "timeout shorter than expected": (
        GOOD + "timeout: 10m\nexpected_duration: 30m\n",
        (5, 1, "timeout", "shorter than expected_duration"),
    ),
    "aws: tag": (GOOD + "task_tags: {'aws:team': data}\n", (5, 13, "task_tags.aws:team", "reserved")),
    "env instead of environment": (GOOD + "env: {A: b}\n", (5, 1, "env", "did you mean 'environment'?")),
    "null matrix axis": (GOOD + "matrix:\n  region:\n", (6, 10, "matrix.region", "has no values")),
    "task definition ARN": (
        GOOD.replace("reports", "arn:aws:ecs:us-east-1:123456789012:task-definition/reports:7"),
        (3, 18, "task_definition", "not the ARN: 'reports:7'"),
    ),
    "matrix over the combination cap": (
        GOOD
        + "matrix:\n  a: ["
        + ", ".join(map(str, range(40)))
        + "]\n  b: ["
        + ", ".join(map(str, range(30)))
        + "]\n",
        (5, 1, "matrix", "1200 combinations; at most 1024"),
    ),
}


@pytest.mark.parametrize("text, expected", MALFORMED.values(), ids=MALFORMED.keys())
def test_each_mistake_is_one_located_problem(config_dir: Path, text: str | bytes, expected):
    path = config_dir / "jobs" / "job.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    write(config_dir, "other", GOOD)

    catalog = load_catalog(config_dir, "local")

    (problem,) = catalog.broken[path]
    line, column, field, fragment = expected
    assert (problem.line, problem.column, problem.field) == (line, column, field), str(problem)
    assert fragment in problem.message, str(problem)
    assert list(catalog.jobs) == ["other"]


def test_secrets_from_templates_and_references_are_fine(config_dir: Path):
    write(
        config_dir,
        "fine",
        GOOD + "command: [load, --password, $DB_PASSWORD, --token, '{{ var.value.token }}']\n"
        "environment:\n  DB_PASSWORD: '{{ conn.warehouse.password }}'\n  URL: https://example.com/x\n",
    )
    assert list(load_catalog(config_dir, "local").jobs) == ["fine"]


def test_a_job_id_of_251_characters_is_refused_by_name(config_dir: Path):
    path = config_dir / "jobs" / f"{'j' * 251}.yml"  # 255 bytes: as long as a file name gets
    path.write_text(GOOD)
    (problem,) = load_catalog(config_dir, "local").broken[path]
    assert "at most 250 characters, not 251" in problem.message


def test_an_alias_bomb_costs_what_a_small_file_costs(config_dir: Path):
    """The 700-byte file that took 16 to 30 s and 1.5 GB: refused before anything expands it. (The cost is
    compared with a good file's in benchmarks/parse; here the point is that no expansion happens at all.)"""
    path = write(config_dir, "bomb", GOOD + BOMB)
    (problem,) = load_catalog(config_dir, "local").broken[path]
    assert len(str(problem)) < 300


def test_job_files_yaml_yml_any_case_one_per_job_and_what_is_not_one(config_dir: Path):
    jobs = config_dir / "jobs"
    write(config_dir, "plain", GOOD)
    (jobs / "short.yml").write_text(GOOD)
    (jobs / "upper.YAML").write_text(GOOD)
    (jobs / "twice.yaml").write_text(GOOD)
    (jobs / "twice.yml").write_text(GOOD)
    (jobs / "notes.txt").write_text("remember the milk\n")
    (jobs / "plain.yaml.bak").write_text(GOOD)
    (jobs / "drafts").mkdir()
    (jobs / ".plain.yaml.swp").write_text("editor state")

    catalog = load_catalog(config_dir, "local")

    assert sorted(catalog.jobs) == ["plain", "short", "upper"]
    messages = {path.name: problems[0].message for path, problems in catalog.broken.items()}
    assert set(messages) == {"twice.yaml", "twice.yml", "notes.txt", "plain.yaml.bak", "drafts"}
    assert "job 'twice' is defined by twice.yaml and twice.yml" in messages["twice.yaml"]
    assert all("not a job file" in messages[name] for name in ("notes.txt", "plain.yaml.bak", "drafts"))


def test_a_symlink_loop_is_a_problem_of_its_own(config_dir: Path):
    write(config_dir, "good", GOOD)
    loop = config_dir / "jobs" / "loop.yaml"
    os.symlink(loop, loop)

    catalog = load_catalog(config_dir, "local")

    assert list(catalog.jobs) == ["good"]
    (problem,) = catalog.broken[loop]
    assert "cannot be read" in problem.message


def test_an_account_id_yaml_reads_as_a_number_says_to_quote_it(config_dir: Path):
    from ecsjobs.catalog.loading import environment_problems

    local = config_dir / "environments" / "local.yaml"
    local.write_text(local.read_text().replace('account_id: "123456789012"', "account_id: 012345670123"))
    (problem,) = environment_problems(config_dir)[local]
    assert (problem.field, problem.line) == ("account_id", 4)
    assert "YAML read this as the number" in problem.message and "quote it" in problem.message


def test_a_job_whose_dag_airflow_refuses_moves_to_broken_and_the_others_load(config_dir: Path, monkeypatch):
    """The safety net behind the catalog's own checks, for a refusal they do not foresee. Every refusal we
    know of is caught by the catalog first (the cases above), so this one is made by hand: ``DAG.validate``
    raising for one job stands in for a check a future Airflow adds."""
    from airflow.sdk import DAG

    write(config_dir, "good", GOOD)
    refused = write(config_dir, "refused", GOOD)
    original = DAG.validate

    def validate(dag):
        if dag.dag_id == "refused":
            raise ValueError("a check this catalog does not know")
        return original(dag)

    monkeypatch.setattr(DAG, "validate", validate)
    catalog = load_catalog(config_dir, "local")

    dags = build_dags(catalog)

    assert list(dags) == ["good"] and list(catalog.jobs) == ["good"]
    (problem,) = catalog.broken[refused]
    assert problem.message == "Airflow refuses the job's DAG: ValueError: a check this catalog does not know"


def test_airflow_parses_every_other_job_beside_the_broken_ones(config_dir: Path, monkeypatch):
    """The DAG files as the DAG processor parses them: the broken job files are one import error, of
    ``dags/catalog_errors.py``, naming each; ``dags/ecs_jobs.py`` loads every other job."""
    from airflow.dag_processing.dagbag import DagBag

    cases = [
        "duplicate key",
        "step name with a space",
        "step named like a generated task",
        "scheduled param default not a date",
        "alias bomb",
        "not UTF-8",
    ]
    for number, name in enumerate(cases):
        text = MALFORMED[name][0]
        (config_dir / "jobs" / f"broken_{number}.yaml").write_bytes(
            text if isinstance(text, bytes) else text.encode()
        )
    write(config_dir, "good", GOOD)
    write(config_dir, "also_good", SCHEDULED)
    monkeypatch.setenv("ECSJOBS_CONFIG_DIR", str(config_dir))

    bag = DagBag(dag_folder=str(REPO / "dags"))

    assert sorted(bag.dag_ids) == ["also_good", "ecsjobs_monitoring_sync", "good"]
    ((path, error),) = bag.import_errors.items()
    assert path.endswith("dags/catalog_errors.py")
    assert "6 job file(s) could not be loaded" in error
    assert all(f"broken_{number}.yaml:" in error for number in range(len(cases)))


def test_the_error_file_checks_the_dags_without_taking_them(config_dir: Path, monkeypatch):
    """``dags/catalog_errors.py`` builds every job's DAG to run Airflow's checks, without registering them:
    DAGs of the same ids from two files would be an import error of their own."""
    from airflow.dag_processing.dagbag import DagBag

    write(config_dir, "good", GOOD)
    monkeypatch.setenv("ECSJOBS_CONFIG_DIR", str(config_dir))

    bag = DagBag(dag_folder=str(REPO / "dags" / "catalog_errors.py"))

    assert (bag.dag_ids, bag.import_errors) == ([], {})
