"""The parse benchmark runs and reports well-formed results, and compares like with like.

Smoke tests only: the benchmark compares timings within its own command; no test asserts a duration.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.parse import synthetic
from ecsjobs.build.factory import build_dags
from ecsjobs.catalog.loading import load_catalog
from local.settings import REPO

pytestmark = pytest.mark.integration  # subprocesses or servers: not the unit lane

# dag-factory, the comparison's other side, is only installed on the latest lane (lock/latest.in).
pytest.importorskip("dagfactory", reason="the parse benchmark runs on the latest lane")


def test_quick_run_reports_every_variant_and_ratio():
    run = REPO / "benchmarks" / "parse" / "run.py"
    command = [sys.executable, str(run), "--runs", "1", "--jobs", "20", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)

    variants = {(v["case"], v["name"]): v for v in results["variants"]}
    assert set(variants) == {
        ("A", "import-only baseline"),
        ("A", "dags/ecs_jobs.py"),
        ("A", "dags/ecs_jobs.py, worker"),
        ("A", "dags/catalog_errors.py"),
        ("B", "dag-factory"),
        ("B", "dags/ecs_jobs.py"),
        ("B", "dags/ecs_jobs.py, worker"),
        ("C", "dags/ecs_jobs.py, hostile files"),
        ("C", "dags/catalog_errors.py, hostile files"),
    }
    assert variants[("A", "dags/ecs_jobs.py")]["dags"] == len(list((REPO / "config" / "jobs").glob("*.yaml")))
    assert variants[("A", "dags/ecs_jobs.py, worker")]["dags"] == 1
    dagfactory, ours = variants[("B", "dag-factory")], variants[("B", "dags/ecs_jobs.py")]
    assert (dagfactory["dags"], dagfactory["tasks"]) == (ours["dags"], ours["tasks"])
    assert ours["dags"] == 20
    for variant in variants.values():
        assert variant["wall_s"] > variant["parse_s"] > 0 and variant["serialize_s"] >= 0

    comparisons = {c["name"].split(":")[0]: c for c in results["comparisons"] if c["target"]}
    assert comparisons["A"]["target"] == "<= 1.15" and comparisons["B"]["target"] == ">= 2"
    assert comparisons["C"]["target"] == "<= 1.2"
    # the hostile files build no DAG and do not hide the shipped jobs' DAGs
    assert (
        variants[("C", "dags/ecs_jobs.py, hostile files")]["dags"]
        == variants[("A", "dags/ecs_jobs.py")]["dags"]
    )
    for comparison in results["comparisons"]:
        assert comparison["wall_ratio"] > 0 and comparison["parse_ratio"] > 0
    for comparison in comparisons.values():
        assert isinstance(comparison["wall_met"], bool) and isinstance(comparison["parse_met"], bool)
    assert isinstance(results["wall_limit"]["met"], bool)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # dag-factory imports Airflow 2 operator paths
def test_synthetic_catalog_is_valid_and_dag_factory_builds_the_same_dags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    synthetic.write(tmp_path, jobs=20)
    catalog = load_catalog(tmp_path / "catalog", "local")
    assert not catalog.broken and len(catalog.jobs) == 20
    monkeypatch.setenv("AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY", "False")
    from dagfactory import load_yaml_dags  # reads its settings on import

    theirs: dict = {}
    folder = tmp_path / "dagfactory"
    load_yaml_dags(globals_dict=theirs, dags_folder=str(folder / "dags"), defaults_config_path=str(folder))

    def graphs(dags: dict) -> dict[str, dict[str, set[str]]]:
        return {
            dag_id: {t.task_id: t.upstream_task_ids for t in dag.tasks if not t.is_teardown}
            for dag_id, dag in dags.items()
        }

    assert graphs(theirs) == graphs(build_dags(catalog))
    assert sum(map(len, graphs(theirs).values())) > len(theirs)  # pipelines too, not only single steps
