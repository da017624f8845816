"""The Amazon MWAA bundle: its layout, and the checks MWAA would make, made here for real.

uv resolves requirements.txt together with what MWAA's image ships under the mwaa lane's pins and installs
exactly that into a fresh virtualenv: no repository code is on its path, so ``ecsjobs`` comes from plugins.zip
only, and packages the lanes have but MWAA does not (moto, pytest) are absent. From uv's cache that takes
seconds, so the honest clean venv is also the fast one. Airflow then parses the bundle laid out as in
/usr/local/airflow after sourcing startup.sh, with network connections refused by a sitecustomize. Those
checks build their own mwaa-lane venv whatever lane runs pytest, so they run on the mwaa lane only
(``make test-mwaa``, part of CI); the layout tests run on both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from ecsjobs.catalog.loading import load_catalog
from ecsjobs.deploy import bundle as mwaa
from local.settings import REPO
from tests.support import MWAA_AIRFLOW, ON_MWAA_LANE

pytestmark = pytest.mark.integration  # subprocesses or servers: not the unit lane

UV = REPO / ".tools" / "bin" / "uv"
mwaa_lane = pytest.mark.skipif(
    not ON_MWAA_LANE,
    reason="the MWAA checks build their own mwaa-lane venv; they run on the mwaa lane (make test-mwaa)",
)


def _cli_env() -> dict[str, str]:
    """The environment of a command run as a user runs it (the Makefile puts these on PYTHONPATH)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}


@pytest.fixture(scope="module")
def built(prod, tmp_path_factory) -> mwaa.Bundle:
    return mwaa.build(prod, REPO / "config", tmp_path_factory.mktemp("dist") / "mwaa")


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_the_bundle_holds_what_mwaa_syncs(built: mwaa.Bundle, prod):
    assert {p.name for p in built.root.iterdir()} == {"dags", "plugins.zip", "requirements.txt", "startup.sh"}
    dag_files = {p.name for p in (REPO / "dags").glob("*.py")}
    catalog_files = {"catalog/defaults.yaml", "catalog/environments/prod.yaml", "catalog/prices.yaml"}
    catalog_files |= {f"catalog/jobs/{spec.source.name}" for spec in prod.jobs.values()}
    assert _files(built.dags) == dag_files | catalog_files | {".airflowignore"}
    assert (built.dags / ".airflowignore").read_text() == "catalog/\n"
    assert built.requirements.read_text() == (REPO / "requirements.txt").read_text()
    shipped = load_catalog(built.dags / "catalog", "prod")
    assert sorted(shipped.jobs) == sorted(prod.jobs) and len(prod.jobs) == 15
    assert shipped.environment == prod.environment


def test_plugins_zip_has_the_plugin_folder_at_its_root(built: mwaa.Bundle):
    names = set(zipfile.ZipFile(built.plugins_zip).namelist())
    expected = {
        p.relative_to(REPO / "plugins").as_posix()
        for p in (REPO / "plugins").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert names == expected
    assert {".airflowignore", "ecsjobs_plugin.py", "ecsjobs/__init__.py", "ecsjobs/build/loader.py"} <= names


def test_the_same_sources_give_the_same_plugins_zip(built: mwaa.Bundle, prod, tmp_path: Path):
    """So an unchanged plugins.zip can be recognised by its checksum and needs no environment update."""
    again = mwaa.build(prod, REPO / "config", tmp_path / "mwaa")
    assert again.plugins_zip.read_bytes() == built.plugins_zip.read_bytes()


def test_startup_sh_sets_the_environment_and_the_catalog_folder(built: mwaa.Bundle, tmp_path: Path):
    def sourced(env: dict[str, str]) -> dict[str, str]:
        script = 'source "$1" && echo "$ECSJOBS_ENV" && echo "$ECSJOBS_CONFIG_DIR"'
        result = subprocess.run(
            ["bash", "-c", script, "startup", str(built.startup)], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        environment, folder = result.stdout.splitlines()
        return {"ECSJOBS_ENV": environment, "ECSJOBS_CONFIG_DIR": folder}

    assert os.access(built.startup, os.X_OK)
    assert sourced({"PATH": os.environ["PATH"], "AIRFLOW_HOME": str(tmp_path)}) == {
        "ECSJOBS_ENV": "prod",
        "ECSJOBS_CONFIG_DIR": f"{tmp_path}/dags/catalog",
    }
    assert sourced({"PATH": os.environ["PATH"]})["ECSJOBS_CONFIG_DIR"] == "/usr/local/airflow/dags/catalog"


def test_a_rebuild_replaces_the_bundle_but_not_other_files(prod, tmp_path: Path):
    out = tmp_path / "mwaa"
    mwaa.build(prod, REPO / "config", out)
    (out / "dags" / "stale.py").write_text("")
    mwaa.build(prod, REPO / "config", out)
    assert not (out / "dags" / "stale.py").exists()

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(mwaa.BundleError, match="notes.txt"):
        mwaa.build(prod, REPO / "config", tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "line",
    [
        "apache-airflow==3.2.1",
        "apache_airflow_providers_amazon>=9",
        "Apache-Airflow-Core",
        "apache-airflow[celery]",
    ],
)
def test_requirements_may_not_ask_for_what_mwaa_owns(line: str):
    with pytest.raises(mwaa.BundleError, match=r"requirements.txt:2: .*MWAA's image provides"):
        mwaa.core_pins(f"# comment\n{line}\n")


def test_requirements_may_ask_for_providers_mwaa_does_not_install():
    mwaa.core_pins((REPO / "requirements.txt").read_text())
    mwaa.core_pins("apache-airflow-providers-slack  # apache-airflow==1 in a comment\n")


def test_the_command_builds_and_refuses_a_broken_catalog(tmp_path: Path):
    ok = subprocess.run(
        [sys.executable, "-m", "ecsjobs", "bundle", "--out", str(tmp_path / "ok")],
        cwd=REPO,
        env=_cli_env(),
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "environment 'prod'" in ok.stdout and (tmp_path / "ok" / "plugins.zip").exists()

    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "config" / "jobs" / "etl_pipeline.yaml").write_text(
        "description: x\nstart_date: 2026-01-01\n"
    )
    broken = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecsjobs",
            "--config",
            str(tmp_path / "config"),
            "bundle",
            "--out",
            str(tmp_path / "no"),
        ],
        cwd=REPO,
        env=_cli_env(),
        capture_output=True,
        text=True,
    )
    assert broken.returncode == 1
    assert "etl_pipeline.yaml" in broken.stderr and "task_definition" in broken.stderr
    assert "Traceback" not in broken.stderr
    assert not (tmp_path / "no").exists()


# --- The checks MWAA would make (mwaa lane) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    assert UV.exists(), f"{UV} is missing: run `make install`"
    return tmp_path_factory.mktemp("mwaa-check")


@pytest.fixture(scope="module")
def pinned(built: mwaa.Bundle, work: Path) -> Path:
    return mwaa.resolve(built, work, UV)


@pytest.fixture(scope="module")
def mwaa_python(pinned: Path, work: Path) -> Path:
    return mwaa.mwaa_venv(pinned, work / "venv", UV)


def _pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", path.read_text(), re.M))


@mwaa_lane
def test_requirements_resolve_with_what_mwaa_ships(pinned: Path):
    pins, lane = _pins(pinned), _pins(REPO / "lock" / "mwaa.txt")
    assert pins["apache-airflow"] == MWAA_AIRFLOW
    assert pins["apache-airflow-providers-amazon"] == lane["apache-airflow-providers-amazon"]
    assert pins["apache-airflow-providers-slack"] == lane["apache-airflow-providers-slack"]
    assert all(lane.get(name, version) == version for name, version in pins.items())
    assert not {"moto", "pytest", "ruff"} & set(pins)  # the lanes' test tools are not MWAA's


@mwaa_lane
def test_a_requirement_that_conflicts_with_mwaas_pins_is_reported(built: mwaa.Bundle, tmp_path: Path):
    shutil.copytree(built.root, tmp_path / "mwaa")
    conflicting = mwaa.Bundle(tmp_path / "mwaa")
    conflicting.requirements.write_text("apache-airflow-providers-slack<8\n")
    with pytest.raises(mwaa.BundleError, match=r"does not resolve(.|\n)*apache-airflow-providers-slack"):
        mwaa.resolve(conflicting, tmp_path, UV)


@mwaa_lane
def test_plugins_zip_and_the_dags_load_in_a_clean_mwaa_venv(
    built: mwaa.Bundle, mwaa_python: Path, work, prod, monkeypatch
):
    home = work / "airflow"
    report = mwaa.probe(built, mwaa_python, home)

    assert mwaa.problems(report, prod, home) == []
    assert report["dag_import_errors"] == {} and report["plugin_import_errors"] == {}
    assert report["unimportable"] == []
    assert "ecsjobs.catalog.schedules.EventBridgeCronTimetable" in report["timetables"]
    assert report["ecsjobs"] == str(home / "plugins" / "ecsjobs")
    assert report["environment"] == "prod" and report["config_dir"] == str(home / "dags" / "catalog")
    assert report["jobs_page"] == len(prod.jobs), "the Jobs page's app and template load from the plugins"
    for job in prod.jobs:
        assert report["dags"][job] == [prod.environment.cluster], job
    # the same DAGs as the repository's dags/ parsed here with the same environment
    monkeypatch.setenv("ECSJOBS_ENV", "prod")
    assert set(report["dags"]) == set(DagBag(dag_folder=str(REPO / "dags"), include_examples=False).dags)


@mwaa_lane
def test_the_check_catches_network_access_and_packages_mwaa_lacks(
    built: mwaa.Bundle, work: Path, tmp_path: Path, prod
):
    """The same check on a bundle with four mistakes: a DAG file calling out while parsing, a plugin module
    importing a package only the lanes have (moto), requirements.txt without the Slack provider (which the
    alerts import only when they send, so parsing alone would not show it) and a stale catalog without a
    job."""
    shutil.copytree(built.root, tmp_path / "mwaa")
    flawed = mwaa.Bundle(tmp_path / "mwaa")
    (flawed.dags / "zz_calls_out.py").write_text(
        "import urllib.request\n\nfrom airflow.sdk import DAG\n\n"
        "settings = urllib.request.urlopen('http://203.0.113.1/settings', timeout=1).read()\n"
    )
    with zipfile.ZipFile(flawed.plugins_zip, "a") as archive:
        archive.writestr("ecsjobs/local_helpers.py", "def fake_aws():\n    import moto\n")
    flawed.requirements.write_text("slack_sdk\naiobotocore\n")
    (flawed.dags / "catalog" / "jobs" / "gdpr_deletion.yaml").unlink()
    python = mwaa.mwaa_venv(mwaa.resolve(flawed, tmp_path, UV), tmp_path / "venv", UV)

    home = tmp_path / "airflow"
    report = mwaa.probe(flawed, python, home)
    found = "\n".join(mwaa.problems(report, prod, home))

    assert "zz_calls_out.py" in found and "network access while parsing the MWAA bundle" in found
    assert "not importable in MWAA's environment: moto" in found
    assert "not importable in MWAA's environment: airflow.providers.slack.hooks.slack" in found
    assert "jobs without a DAG: gdpr_deletion" in found
    assert [Path(path).name for path in report["dag_import_errors"]] == ["zz_calls_out.py"]


@mwaa_lane
def test_make_bundle_builds_and_checks(tmp_path: Path):
    """What ``make bundle`` runs, with the output folder relative to the working directory."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecsjobs",
            "--config",
            str(REPO / "config"),
            "bundle",
            "--out",
            "dist/mwaa",
            "--check",
        ],
        cwd=tmp_path,
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "checked:" in result.stdout
    assert (tmp_path / "dist" / "mwaa" / "plugins.zip").exists()
