"""Parse benchmark: what building the catalog's DAGs adds to parsing a DAG file, and how it compares.

A. ``dags/ecs_jobs.py`` with the shipped catalog against ``parse/dags/import_only.py``, which imports the
   same modules and builds nothing; also a worker's parse (``_AIRFLOW_PARSING_CONTEXT_DAG_ID`` set) and
   ``dags/catalog_errors.py``, the other file the DAG processor parses.
B. A synthetic catalog of ``--jobs`` jobs against dag-factory building the same DAGs (``synthetic.py``).
C. Both DAG files with the shipped catalog plus hostile job files (``HOSTILE_FILES``) against the same files
   with the shipped catalog: a broken catalog must cost about what a good one does.

Every measurement is a fresh interpreter parsing one file (``measure.py``). Each variant runs once untimed
first, which checks what it builds; then the variants take turns, ``--runs`` times, and each comparison is
the ratio of medians measured in this one command. Timed assertions never go in tests.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/parse/run.py [--runs 7] [--jobs 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHIPPED_WORKER_DAG = "etl_pipeline"
WALL_LIMIT_S = 10.0  # for case B, start to DAGs built
TIMINGS = ("wall_s", "parse_s", "serialize_s")


@dataclass(frozen=True, eq=False)
class Variant:
    case: str
    name: str
    dag_file: Path
    env: dict[str, str]
    dags: int  # how many DAGs it must build
    import_errors: int = 0  # how many files must fail (catalog_errors.py with broken job files: 1)


@dataclass(frozen=True, eq=False)
class Comparison:
    """``variant / baseline``, or with ``speedup`` ``baseline / variant``; ``target`` bounds it."""

    name: str
    variant: Variant
    baseline: Variant
    target: float | None = None
    speedup: bool = False
    same_dags: bool = False  # both build the same DAGs, checked before timing


def plan(work: Path, jobs: int) -> tuple[list[Variant], list[Comparison]]:
    shipped = {"ECSJOBS_CONFIG_DIR": str(REPO / "config")}
    shipped_jobs = len(list((REPO / "config" / "jobs").glob("*.y*ml")))
    import_only = Variant("A", "import-only baseline", HERE / "dags" / "import_only.py", shipped, 0)
    ecs_jobs = Variant("A", "dags/ecs_jobs.py", REPO / "dags" / "ecs_jobs.py", shipped, shipped_jobs)
    worker = shipped | {"_AIRFLOW_PARSING_CONTEXT_DAG_ID": SHIPPED_WORKER_DAG}
    ecs_worker = Variant("A", "dags/ecs_jobs.py, worker", ecs_jobs.dag_file, worker, 1)
    errors = Variant("A", "dags/catalog_errors.py", REPO / "dags" / "catalog_errors.py", shipped, 0)

    synthetic = {"ECSJOBS_CONFIG_DIR": str(work / "synthetic" / "catalog")}
    last_job = max(path.stem for path in (work / "synthetic" / "catalog" / "jobs").iterdir())
    dagfactory_env = {"BENCHMARK_DAGFACTORY_DIR": str(work / "synthetic" / "dagfactory")}
    dagfactory = Variant("B", "dag-factory", HERE / "dags" / "dagfactory_dags.py", dagfactory_env, jobs)
    ours = Variant("B", "dags/ecs_jobs.py", ecs_jobs.dag_file, synthetic, jobs)
    worker = synthetic | {"_AIRFLOW_PARSING_CONTEXT_DAG_ID": last_job}
    ours_worker = Variant("B", "dags/ecs_jobs.py, worker", ecs_jobs.dag_file, worker, 1)

    hostile_env = {"ECSJOBS_CONFIG_DIR": str(hostile_catalog(work / "hostile"))}
    ecs_jobs_hostile = Variant(
        "C", "dags/ecs_jobs.py, hostile files", ecs_jobs.dag_file, hostile_env, shipped_jobs
    )
    errors_hostile = Variant("C", "dags/catalog_errors.py, hostile files", errors.dag_file, hostile_env, 0, 1)

    comparisons = [
        Comparison("A: shipped catalog / import-only", ecs_jobs, import_only, target=1.15),
        Comparison("A: worker (one DAG) / import-only", ecs_worker, import_only),
        Comparison("A: catalog_errors.py / import-only", errors, import_only),
        Comparison("B: dag-factory / ecsjobs (speedup)", ours, dagfactory, 2.0, speedup=True, same_dags=True),
        Comparison("B: dag-factory / ecsjobs worker (speedup)", ours_worker, dagfactory, speedup=True),
        Comparison("C: ecs_jobs.py, hostile files / shipped", ecs_jobs_hostile, ecs_jobs, target=1.2),
        Comparison("C: catalog_errors.py, hostile files / shipped", errors_hostile, errors, target=1.2),
    ]
    variants = [import_only, ecs_jobs, ecs_worker, errors, dagfactory, ours, ours_worker]
    return variants + [ecs_jobs_hostile, errors_hostile], comparisons


HOSTILE_FILES = {  # job files that used to cost seconds and gigabytes, or a traceback, at every parse
    "bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    ),
    "recursive": "description: x\ntags: &t [a, *t]\n",
    "many_mistakes": "".join(f"key_{i}: {i}\n" for i in range(3000)),
}


def hostile_catalog(folder: Path) -> Path:
    """``config/`` plus job files a parse must refuse at the cost of a small file: an alias bomb, a
    recursive alias, 3,000 unknown keys, bytes that are not UTF-8."""
    shutil.copytree(REPO / "config", folder)
    for name, text in HOSTILE_FILES.items():
        (folder / "jobs" / f"{name}.yaml").write_text(text)
    (folder / "jobs" / "latin1.yaml").write_bytes(b"description: caf\xe9\n")
    return folder


def child_env(work: Path, extra: dict[str, str]) -> dict[str, str]:
    """A private Airflow home, and no Airflow or catalog settings inherited from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "ECSJOBS"))}
    env.update(
        AIRFLOW_HOME=str(work / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),  # registers the EventBridge timetable
        AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY="False",
        ECSJOBS_ENV="local",
        PYTHONPATH=os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
    )
    return env | extra


def run_python(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} exited with {done.returncode}:\n{done.stderr[-3000:]}")


def measure(variant: Variant, work: Path) -> dict[str, Any]:
    result = work / "result.json"
    started = time.time()
    run_python([str(HERE / "measure.py"), str(variant.dag_file), str(result)], child_env(work, variant.env))
    measured = json.loads(result.read_text())
    return measured | {"wall_s": measured["built_at"] - started}


def check(variants: dict[Variant, dict[str, Any]], comparisons: list[Comparison]) -> None:
    """Every file parses without errors into the DAGs expected, and both generators build the same DAGs."""
    for variant, measured in variants.items():
        if len(measured["errors"]) != variant.import_errors or measured["dags"] != variant.dags:
            raise RuntimeError(
                f"{variant.case} {variant.name}: {measured['dags']} DAGs (expected {variant.dags}), "
                f"import errors: {measured['errors']}"
            )
    for c in comparisons:
        if c.same_dags and variants[c.variant]["digest"] != variants[c.baseline]["digest"]:
            raise RuntimeError(f"{c.name}: the two generators built different DAGs")


def benchmark(runs: int, jobs: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]  # other work on the machine skews the ratios: say how busy it was
    with tempfile.TemporaryDirectory(prefix="ecsjobs-bench-parse-") as tmp:
        work = Path(tmp)
        generate = [str(HERE / "synthetic.py"), str(work / "synthetic"), "--jobs", str(jobs)]
        run_python(generate, child_env(work, {}))
        variants, comparisons = plan(work, jobs)
        first = {variant: measure(variant, work) for variant in variants}
        check(first, comparisons)
        samples: dict[Variant, list[dict[str, Any]]] = {variant: [] for variant in variants}
        for turn in range(runs):
            shift = turn % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                samples[variant].append(measure(variant, work))
    medians = {
        variant: {key: statistics.median(s[key] for s in samples[variant]) for key in TIMINGS}
        for variant in variants
    }
    ours = next(v for v in variants if v.case == "B" and v.name == "dags/ecs_jobs.py")
    return {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average": [load_before, os.getloadavg()[0]],
        "airflow": version("apache-airflow"),
        "dag_factory": version("dag-factory"),
        "runs": runs,
        "jobs": jobs,
        "variants": [
            {
                "case": v.case,
                "name": v.name,
                "dags": first[v]["dags"],
                "tasks": first[v]["tasks"],
                **medians[v],
            }
            for v in variants
        ],
        "comparisons": [_compare(c, medians) for c in comparisons],
        "wall_limit": {"limit_s": WALL_LIMIT_S, "met": medians[ours]["wall_s"] < WALL_LIMIT_S},
    }


def _compare(comparison: Comparison, medians: dict[Variant, dict[str, float]]) -> dict[str, Any]:
    result: dict[str, Any] = {"name": comparison.name, "target": None}
    for key in ("wall", "parse"):
        variant, baseline = medians[comparison.variant][f"{key}_s"], medians[comparison.baseline][f"{key}_s"]
        result[f"{key}_ratio"] = baseline / variant if comparison.speedup else variant / baseline
    if comparison.target is not None:
        at_least = comparison.speedup
        result["target"] = f"{'>=' if at_least else '<='} {comparison.target:g}"
        for key in ("wall", "parse"):
            ratio = result[f"{key}_ratio"]
            result[f"{key}_met"] = ratio >= comparison.target if at_least else ratio <= comparison.target
    return result


def markdown(results: dict[str, Any]) -> str:
    met = {True: "met", False: "**missed**"}
    load_before, load_after = results["load_average"]
    lines = [
        f"{results['date']}, {results['machine']}, Airflow {results['airflow']}, dag-factory "
        f"{results['dag_factory']}; medians of {results['runs']} runs; B has {results['jobs']} jobs; "
        f"1-minute load average {load_before:.2f} before, {load_after:.2f} after.",
        "",
        "| case | DAG file | DAGs | tasks | process to DAGs built (s) | file parse (s) | serialize (s) |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for v in results["variants"]:
        lines.append(
            f"| {v['case']} | {v['name']} | {v['dags']} | {v['tasks']} | {v['wall_s']:.2f} "
            f"| {v['parse_s']:.3f} | {v['serialize_s']:.3f} |"
        )
    lines += ["", "| comparison | process ratio | file parse ratio | target |", "|---|--:|--:|---|"]
    for c in results["comparisons"]:
        target = c["target"] and f"{c['target']}: process {met[c['wall_met']]}, parse {met[c['parse_met']]}"
        lines.append(f"| {c['name']} | {c['wall_ratio']:.2f}x | {c['parse_ratio']:.2f}x | {target or ''} |")
    limit = results["wall_limit"]
    lines += ["", f"B under {limit['limit_s']:g} s from process start to DAGs built: {met[limit['met']]}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each variant (default 7)")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs in the synthetic catalog (default 1000)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    args = parser.parse_args()
    results = benchmark(args.runs, args.jobs)
    print(json.dumps(results, indent=2) if args.json else markdown(results))


if __name__ == "__main__":
    main()
