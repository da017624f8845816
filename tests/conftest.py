"""Shared fixtures: a private AIRFLOW_HOME, the local AWS and local Slack as real servers, a migrated DB.

The environment is set when this file is imported, before any test module imports Airflow, so no test ever
reads or writes ``~/airflow``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from local.settings import REPO, Ports, airflow_env
from tests.support import ON_MWAA_LANE, LocalServer, container_environment, one_step_job

TESTS = REPO / "tests"
_HOME = Path(tempfile.mkdtemp(prefix="ecsjobs-test-airflow-"))
_PORTS = Ports(aws=0, slack=0, api=0)  # real ports are picked by the server fixtures
# dag.test() runs in this process alone: a SQLite file does (the stack and the tier start their PostgreSQL).
_DATABASE = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}"}
os.environ.update(airflow_env(_HOME, _PORTS, database=_DATABASE))
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(autouse=True)
def _no_parsing_context(monkeypatch) -> None:
    clear_parsing_context(monkeypatch)


def clear_parsing_context(monkeypatch) -> None:
    """Airflow 3.2's ``dag.test()`` leaves the parsing context of its DAG in the environment; a later DAG file
    parse would then build only that DAG, as a worker would."""
    for name in ("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "_AIRFLOW_PARSING_CONTEXT_TASK_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = LocalServer("local.aws", "/_local/stats", tmp_path_factory.mktemp("local-aws") / "server.log")
    os.environ.update(_connections(aws=server.port))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def local_slack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = LocalServer("local.slack", "/messages", tmp_path_factory.mktemp("local-slack") / "server.log")
    os.environ.update(_connections(slack=server.port))
    yield server
    server.stop()


def _connections(aws: int | None = None, slack: int | None = None) -> dict[str, str]:
    from local.settings import connections

    current = {k: os.environ[k] for k in ("AIRFLOW_CONN_AWS_LOCAL", "AIRFLOW_CONN_SLACK_LOCAL")}
    fresh = connections(Ports(aws=aws or 0, slack=slack or 0, api=0))
    if aws:
        current["AIRFLOW_CONN_AWS_LOCAL"] = fresh["AIRFLOW_CONN_AWS_LOCAL"]
    if slack:
        current["AIRFLOW_CONN_SLACK_LOCAL"] = fresh["AIRFLOW_CONN_SLACK_LOCAL"]
    return current


@pytest.fixture
def slack(local_slack: LocalServer) -> LocalServer:
    """The local Slack with no message left by an earlier test."""
    local_slack.post("/_local/reset")
    return local_slack


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The metadata DB of this test session, migrated once (SQLite in the private AIRFLOW_HOME)."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    result = subprocess.run([airflow, "db", "migrate"], capture_output=True, text=True, env=os.environ)
    assert result.returncode == 0, result.stdout + result.stderr
    return _HOME


@pytest.fixture(scope="session")
def seeded_aws(local_aws: LocalServer) -> LocalServer:
    """The local AWS seeded from the shipped catalog, as ``make run`` seeds it."""
    from ecsjobs.catalog.loading import load_catalog
    from local.seed import seed

    seed(load_catalog(REPO / "config", "local"), local_aws.url)
    return local_aws


@pytest.fixture(scope="session")
def prod():
    """The shipped catalog in its prod environment."""
    from ecsjobs.catalog.loading import load_catalog

    return load_catalog(REPO / "config", "prod")


@pytest.fixture
def aws(seeded_aws: LocalServer) -> Iterator[LocalServer]:
    """The seeded local AWS with no scenario rules, faults or call records left by an earlier test."""
    seeded_aws.post("/_local/reset")
    yield seeded_aws
    seeded_aws.post("/_local/reset")


@pytest.fixture
def ecs(aws: LocalServer):
    """A plain boto3 ECS client of the local AWS."""
    return aws.client("ecs")


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A catalog folder for one test: the shipped environments and prices, no defaults, no jobs yet.

    Steps resume as soon as their task stops: ``dag.test()`` has no executor whose stale events
    ``resume_delay`` outwaits. Waits poll (no ``task_events``): ``dag.test()`` runs each trigger in an event
    loop of its own and closes it when the trigger fires, which abandons the events listener's long poll, and
    SQS then hides the next step's STOPPED event for the visibility timeout. A triggerer's loop lives on and
    its poller lingers until the long poll returns (``tests/integration/test_task_events.py``; the tier runs
    steps in event mode)."""
    shutil.copytree(REPO / "config" / "environments", tmp_path / "environments")
    shutil.copy(REPO / "config" / "prices.yaml", tmp_path / "prices.yaml")
    local = tmp_path / "environments" / "local.yaml"
    text, found = re.subn(r"(?m)^task_events:.*\n(?:[ #].*\n)*", "", local.read_text())
    assert found == 1, "the shipped local environment turns task events on"
    local.write_text(text + "resume_delay: 0s\n")
    (tmp_path / "jobs").mkdir()
    return tmp_path


@pytest.fixture
def run_job(config_dir: Path, monkeypatch, airflow_db, aws):
    """Write a one-step job, run it once with dag.test(), return the run, its try count and its ECS tasks."""
    monkeypatch.setenv("ECSJOBS_CONFIG_DIR", str(config_dir))
    local = config_dir / "environments" / "local.yaml"
    local.write_text(local.read_text().replace("poll_interval: 2s", "poll_interval: 1s"))
    days = iter(range(1, 29))

    def run(
        case: str,
        scenario: dict | None = None,
        launch: str = "fargate",
        extra: str = "",
        family: str | None = None,
        container: str | None = None,
        logical_date: datetime | None = NEXT_DAY,
        environment: dict[str, str] | None = None,
        retries: int = 3,
        **rule,
    ):
        default_family, default_container = (
            ("sessionizer", "app") if launch.endswith("spot") else ("data-processor", "batch-container")
        )
        family, container = family or default_family, container or default_container
        if scenario is not None:
            aws.post("/_local/scenarios", {"match": {"env": {"CASE": case}}, "scenario": scenario, **rule})
        variables = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in (environment or {}).items())
        job = one_step_job(case, variables + textwrap.dedent(extra), family, container, launch, retries)
        (config_dir / "jobs" / f"{case}.yaml").write_text(job)
        from ecsjobs.build.loader import load_dags

        clear_parsing_context(monkeypatch)  # the test's earlier run_job may have left one
        dag = load_dags()[case]
        if logical_date is NEXT_DAY:
            logical_date = datetime(2026, 4, next(days), tzinfo=UTC)
        dag_run = dag.test(logical_date=logical_date)
        tasks = [
            t for t in aws.get("/_local/tasks") if {"name": "CASE", "value": case} in container_environment(t)
        ]
        return SimpleNamespace(state=dag_run.state, tasks=sorted(tasks, key=_try), dag=dag, dag_run=dag_run)

    return run


NEXT_DAY = datetime.min  # run_job's default logical date: the next day of April 2026 (None: no date)


def _try(task: dict) -> int:
    return int(next(t["value"] for t in task["tags"] if t["key"] == "ecsjobs:try"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test gets its lane from its folder: ``tests/unit`` (in-process: no server, no subprocess; a unit
    test that asks for a server is a mistake, reported as such), ``tests/integration``, ``tests/stack`` and
    ``tests/tier``; elsewhere (``tests/local`` and the repository checks) a test that uses the local AWS or
    Slack, or runs Airflow, is ``integration`` and any other ``unit``. A test of the whole stack waits on
    Airflow starting, parsing and scheduling, which on a loaded CI machine alone can take minutes: its budget
    is larger. On the mwaa lane the suites of ``LATEST_LANE_ONLY`` are left out."""
    misplaced = []
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0]
        servers = sorted(INTEGRATION_FIXTURES.intersection(item.fixturenames))
        if folder == "unit" and (servers or item.get_closest_marker("integration")):
            misplaced.append(f"{item.nodeid} ({', '.join(servers) or 'marked integration'})")
        elif folder in ("stack", "tier") or any(
            item.get_closest_marker(m) for m in ("stack", "tier", "compose")
        ):
            item.add_marker(pytest.mark.stack if folder == "stack" else pytest.mark.tier)
            item.add_marker(pytest.mark.timeout(STACK_TEST_TIMEOUT))
        elif folder == "integration" or servers or item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)
    if misplaced:
        raise pytest.UsageError(
            "unit tests that need servers belong in tests/integration/: " + "; ".join(misplaced)
        )
    if ON_MWAA_LANE:
        left_out = [item for item in items if _latest_lane_suite(item)]
        for item in left_out:
            _LEFT_OUT[_latest_lane_suite(item)] = _LEFT_OUT.get(_latest_lane_suite(item), 0) + 1
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not _latest_lane_suite(item)]


def _latest_lane_suite(item: pytest.Item) -> str | None:
    path = item.path.relative_to(REPO).as_posix()
    return next((suite for suite in LATEST_LANE_ONLY if path.startswith(suite)), None)


def pytest_terminal_summary(terminalreporter) -> None:
    for suite, count in sorted(_LEFT_OUT.items()):
        terminalreporter.write_line(f"left out on this lane: {suite} ({count}): {LATEST_LANE_ONLY[suite]}")


_LEFT_OUT: dict[str, int] = {}


# Suites that run on the latest lane only, and why. What MWAA runs (the DAG files and the library they import,
# the tasks, the triggers, the plugin, the monitoring sync DAG) is tested on both lanes, MWAA's versions
# being the mwaa lane's; so is everything that depends on a package whose version differs between the lanes.
_CLI = "a command-line tool, run from the project's own venv (the latest lane's); MWAA never runs it"
LATEST_LANE_ONLY = {
    "tests/unit/decisions/": "standard library only (tests/test_house.py checks it): alike on every lane",
    "tests/test_house.py": "reads the source files: the same on every lane",
    "tests/unit/importer/": _CLI,
    "tests/integration/test_importer.py": _CLI,
    "tests/integration/test_import_roundtrip.py": _CLI,
    "tests/integration/test_report.py": _CLI,
    "tests/integration/test_cli.py": _CLI,
    "tests/unit/cli/": _CLI,
    "tests/unit/deploy/test_iam.py": _CLI + " (a real run's calls: tests/integration/test_iam.py)",
    "tests/integration/test_reach.py": _CLI + " (bundle --check)",
    "tests/integration/test_aws_walkthroughs.py": "the docs' AWS CLI walk-throughs (awscli: latest lock)",
    "tests/test_docs.py": "the docs' command-line examples, run as a user runs them (" + _CLI + ")",
    "tests/integration/test_benchmarks.py": "the benchmarks compare with dag-factory, a latest-lane package",
    "tests/local/": "the local stand-ins are the latest lane's; MWAA has none",
    "tests/stack/": "make run and docker compose run the latest lane's pins (the tier runs on both lanes)",
    "tests/integration/test_compose_file.py": "docker compose runs the latest lane's image (Dockerfile)",
    "tests/tier/test_ha_topology.py": (
        "the Celery topology is Airflow's and the Celery provider's, not the lane's; both lanes' stacks at"
        " once would also double the load its busy-machine batch is measured under"
    ),
}


STACK_TEST_TIMEOUT = 1200  # seconds; each wait inside has its own, smaller budget
INTEGRATION_FIXTURES = frozenset(
    {"local_aws", "seeded_aws", "aws", "ecs", "local_slack", "slack", "run_job", "airflow_db"}
)


def pytest_sessionfinish(session, exitstatus) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)
