"""Loading the catalog: layering, and mistakes reported with file, line, column and field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ecsjobs.catalog import CatalogError, load_catalog
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
    assert str(problem).endswith("steps.load.depends_on: no step 'extrakt'; did you mean 'extract'?")
    assert problem.line == 8


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
