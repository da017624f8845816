"""``python -m ecsjobs``: validate, list, render and schema, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ecsjobs.catalog.loading import load_catalog
from local.settings import REPO
from tests.unit.catalog.test_loading import GOOD, write
from tests.unit.catalog.test_problems import MALFORMED

pytestmark = pytest.mark.integration  # subprocesses or servers: not the unit lane


def cli(*args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    if config:
        env["ECSJOBS_CONFIG_DIR"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "ecsjobs", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_validate_passes_on_the_shipped_catalog():
    result = cli("validate")
    assert result.returncode == 0, result.stderr
    assert "15 job(s) valid in environment 'local'" in result.stdout
    assert cli("--env", "prod", "validate").returncode == 0


def test_validate_reports_every_problem_of_every_file_and_fails(config_dir: Path):
    (config_dir / "jobs" / "a.yaml").write_text("description: x\nstart_date: 2026-01-01\ncontainer: app\n")
    (config_dir / "jobs" / "b.yaml").write_text("description: x\nstart_date: 2026-13-01\nlanch: ec2\n")
    result = cli("validate", str(config_dir))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any("a.yaml:1:1: task_definition: required but not set" in line for line in lines)
    assert any("b.yaml:2:13: start_date:" in line for line in lines)
    assert any("b.yaml:3:1: lanch: unknown key 'lanch'; did you mean 'launch'?" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_a_broken_environment_file_is_an_error_not_a_traceback(config_dir: Path):
    (config_dir / "environments" / "local.yaml").write_text("region: [\n")
    result = cli("validate", str(config_dir))
    assert result.returncode == 1
    assert "local.yaml:2:1: invalid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_list_shows_schedules_in_words_and_next_fire_times():
    result = cli("list")
    assert result.returncode == 0, result.stderr
    assert "etl_pipeline:" in result.stdout
    assert "steps: extract -> transform -> load" in result.stdout
    assert "launch: ec2_spot, fargate, fargate_spot" in result.stdout
    assert "schedule: manual only" in result.stdout


def test_render_prints_the_run_task_request_for_a_date():
    result = cli("render", "data_processor", "--date", "2026-03-04T02:00:00Z")
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)
    request = entry["request"]
    assert entry["step"] == "run"
    assert entry["settings"]["retries"] == 2  # from config/defaults.yaml
    assert entry["settings"]["timeout"] == "PT2H"
    assert request["taskDefinition"] == "data-processor"
    assert request["launchType"] == "FARGATE"
    assert {"name": "JOB_DATE", "value": "2026-03-04"} in request["overrides"]["containerOverrides"][0][
        "environment"
    ]


def test_render_fans_out_over_the_matrix_with_given_params():
    result = cli(
        "render", "report_generator", "--date", "2026-03-02", "--param", 'customers=["acme","wayne"]'
    )
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [e["matrix"] for e in entries] == [{"customer": "acme"}, {"customer": "wayne"}]
    commands = [e["request"]["overrides"]["containerOverrides"][0]["command"] for e in entries]
    assert commands[1][3:6] == ["--customer", "wayne", "--date"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["render", "nope", "--date", "2026-01-01"], "no job 'nope'"),
        (["render", "data_processor", "--date", "yesterday"], "expected an ISO date"),
        (["render", "report_generator", "--date", "2026-01-01", "--param", "report_type=fancy"], "'fancy'"),
        (["render", "report_generator", "--date", "2026-01-01", "--param", "colour=red"], "unknown param"),
        (["render", "report_generator", "--date", "2026-01-01", "--param", "oops"], "expected NAME=VALUE"),
    ],
)
def test_render_rejects_bad_input_with_a_message(args: list[str], message: str):
    result = cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_committed_json_schemas_are_current(tmp_path: Path):
    assert cli("schema", "--check").returncode == 0
    config = tmp_path / "config"
    (config / "schema").mkdir(parents=True)
    (config / "schema" / "job.schema.json").write_text("{}")
    result = cli("--config", str(config), "schema", "--check")
    assert result.returncode == 1
    assert "stale JSON Schema" in result.stderr


def test_every_yaml_file_points_editors_at_its_schema():
    config = REPO / "config"
    for path in [config / "defaults.yaml", *config.glob("environments/*.yaml"), *config.glob("jobs/*.yaml")]:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        assert (path.parent / first.split("=", 1)[1]).resolve().exists(), path


def test_render_matches_what_the_run_sends(aws, airflow_db, monkeypatch):
    """The dry run is the real request: run the job and compare with what reached the local AWS."""
    from ecsjobs.build.loader import load_dags
    from ecsjobs.build.render import render_requests

    monkeypatch.setenv("ECSJOBS_CONFIG_DIR", str(REPO / "config"))
    logical_date = datetime(2026, 3, 9, 2, tzinfo=UTC)
    dag_run = load_dags()["data_processor"].test(logical_date=logical_date)
    assert dag_run.state == "success"

    catalog = load_catalog(REPO / "config", "local")
    (rendered,) = render_requests(
        catalog.jobs["data_processor"], catalog.environment, "local", logical_date, {}
    )
    request = rendered["request"]
    (sent,) = [t for t in aws.get("/_local/tasks") if t["overrides"] == request["overrides"]]
    assert sent["family"] == request["taskDefinition"]
    assert sent["launchType"] == request["launchType"]
    sent_tags = {t["key"]: t["value"] for t in sent["tags"]}
    assert sent_tags.items() >= {t["key"]: t["value"] for t in request["tags"]}.items()
    assert sent_tags["ecsjobs:try"] == "1"  # added at run time, with the clientToken


@pytest.mark.integration  # a subprocess
def test_validate_checks_every_environment_file_not_only_the_selected_one(config_dir: Path):
    prod = config_dir / "environments" / "prod.yaml"
    prod.write_text(prod.read_text().replace("cluster:", "clsuter:", 1))
    write(config_dir, "job", GOOD)

    done = _validate(config_dir, "local")

    assert done.returncode == 1
    assert "prod.yaml" in done.stderr and "unknown key 'clsuter'; did you mean 'cluster'?" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.integration  # a subprocess
@pytest.mark.parametrize("case", ["not UTF-8", "control character", "recursive alias", "alias bomb"])
def test_validate_reports_hostile_files_without_a_traceback(config_dir: Path, case: str):
    text, (line, column, _, fragment) = MALFORMED[case]
    (config_dir / "jobs" / "hostile.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())

    done = _validate(config_dir, "local")

    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"hostile.yaml:{line}:{column}:" in done.stderr and fragment in done.stderr
    assert len(done.stderr) < 2000


def _validate(config_dir: Path, environment: str) -> subprocess.CompletedProcess:
    return cli("--config", str(config_dir), "--env", environment, "validate")
