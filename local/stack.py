"""The local stack behind ``make run``: local AWS, local Slack and Airflow, as processes in the foreground.

Starts the metadata DB (a PostgreSQL server of the stack's own, its data under ``.local/airflow/postgres`` by
default), the stand-ins, seeds the local AWS from the catalog, migrates the metadata DB, starts the Airflow
components of the topology (``local``: one of each with LocalExecutor; ``celery``: MWAA's shape, with the
Celery broker on a local SQS of its own, see ``local/settings.py``), waits until every one is up, and stops
everything it started on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ecsjobs.catalog.environment import pool_name
from ecsjobs.catalog.loading import load_catalog
from local import postgres
from local.api import Api, ApiError
from local.settings import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    REPO,
    TOPOLOGIES,
    Component,
    Ports,
    airflow_env,
    components,
    write_passwords,
)

HOST = "127.0.0.1"
START_MARKER = "--- local.stack started"  # the line each start adds to a process's log
CRASH_LOOP_RESTARTS, CRASH_LOOP_WINDOW = 5, 60  # restarts of one component within that many seconds


class Stack:
    """Processes of one local stack; every child gets its own process group so stopping is complete.

    :param config_dir: the catalog the stack seeds the local AWS from and Airflow builds its DAGs from
        (default: ``config/``).
    :param extra_env: settings added to every process's environment, e.g. faster scheduling in tests.
    :param topology: which Airflow processes run (``local.settings.TOPOLOGIES``).
    """

    def __init__(
        self,
        home: Path,
        ports: Ports,
        log_dir: Path,
        config_dir: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        topology: str = "local",
    ):
        self.home, self.ports, self.log_dir, self.topology = home, ports, log_dir, topology
        self.components: dict[str, Component] = {c.name: c for c in components(topology, ports)}
        self.processes: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, tuple[list[str], dict[str, str], dict[str, Any]]] = {}
        self.restarts: dict[str, list[float]] = {}  # monotonic times :meth:`supervise` restarted each
        self.database: postgres.Cluster | None = None
        # A parsing context left in the environment would make every component build only that one DAG.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("_AIRFLOW_PARSING_CONTEXT_")}
        self.env = {
            **inherited,
            **airflow_env(home, ports, HOST, config_dir, topology=topology),
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
            "LOCAL_AWS_PORT": str(ports.aws),
            "LOCAL_SLACK_PORT": str(ports.slack),
            **(extra_env or {}),
        }

    def start(
        self, name: str, args: list[str], env: Mapping[str, str] | None = None, **popen: Any
    ) -> subprocess.Popen:
        """Start ``args`` as process ``name`` with the stack's environment plus ``env``, logging to
        ``<log_dir>/<name>.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        log.write(f"{START_MARKER} {datetime.now(UTC).isoformat()}: {' '.join(args)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            args,
            env={**self.env, **(env or {})},
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **popen,
        )
        self.processes[name], self.commands[name] = process, (args, dict(env or {}), popen)
        return process

    def run(self, args: list[str], **popen: Any) -> None:
        result = subprocess.run(args, env=self.env, cwd=REPO, capture_output=True, text=True, **popen)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def up(self, timeout: float = 180) -> None:
        python = sys.executable
        self.start_database(timeout)
        self.start("local-aws", [python, "-m", "local.aws", "--host", HOST, "--port", str(self.ports.aws)])
        if self.topology == "celery":
            broker = [python, "-m", "local.aws", "--host", HOST, "--port", str(self.ports.broker)]
            self.start("local-broker", broker)
        self.start(
            "local-slack", [python, "-m", "local.slack", "--host", HOST, "--port", str(self.ports.slack)]
        )
        write_passwords(self.home)
        self.run([airflow_program(), "db", "migrate"])
        self.wait(lambda: _answers(f"http://{HOST}:{self.ports.aws}/_local/stats"), timeout, "local AWS")
        self.wait(lambda: _answers(f"http://{HOST}:{self.ports.slack}/messages"), timeout, "local Slack")
        if self.topology == "celery":
            broker = f"http://{HOST}:{self.ports.broker}/_local/stats"
            self.wait(lambda: _answers(broker), timeout, "the local Celery broker (SQS)")
        self.run([python, "-m", "local.seed", "--endpoint", f"http://{HOST}:{self.ports.aws}"])
        env = load_catalog(Path(self.env["ECSJOBS_CONFIG_DIR"]), self.env["ECSJOBS_ENV"]).environment
        description = f"ECS tasks of the batch jobs on cluster {env.cluster}"
        self.run([airflow_program(), "pools", "set", pool_name(env), str(env.max_running_tasks), description])
        started = datetime.now(UTC)
        for component in self.components.values():
            self.start(component.name, [airflow_program(), *component.args], component.env)
        self.wait(self.healthy, timeout, "Airflow health")
        for name in self.components:
            self.wait(lambda name=name: self._back(name, started), timeout, name)

    def start_database(self, timeout: float) -> None:
        """The metadata DB's server, with a new cluster and database the first time."""
        self.database = cluster = postgres.Cluster(self.home, self.ports.postgres)
        new = cluster.new
        if new:
            self.run(cluster.initdb_command(), **cluster.popen)
        self.start("postgres", cluster.server_command(), **cluster.popen)
        self.wait(lambda: _succeeds(cluster.ready_command()), timeout, f"PostgreSQL on port {cluster.port}")
        if new:
            self.run(cluster.createdb_command())

    def restart(self, name: str, sig: signal.Signals = signal.SIGKILL, timeout: float = 180) -> None:
        """Stop one component's whole process group with ``sig`` (SIGKILL: it gets no chance to clean up),
        start it again and wait until it is back: the api-server answering, the others heartbeating anew."""
        self.kill(name, sig)
        self.resume(name, timeout)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop one process's whole group with ``sig`` and wait until it has exited; it is no longer one of
        :attr:`processes` (whose deaths :meth:`wait` reports) until :meth:`resume` starts it again."""
        process = self.processes.pop(name)
        _signal_group(process, sig)
        process.wait()

    def resume(self, name: str, timeout: float = 180) -> None:
        """Start a process that :meth:`kill` stopped as it was started, and wait until it is back."""
        restarted = datetime.now(UTC)
        args, env, popen = self.commands[name]
        self.start(name, args, env, **popen)
        if name in self.components:
            self.wait(lambda: self._back(name, restarted), timeout, f"{name} after its restart")
        elif name == "postgres" and self.database:
            ready = self.database.ready_command()
            # Airflow's components exit when the DB goes away: started again meanwhile, as MWAA does.
            self.wait(lambda: _succeeds(ready), timeout, "PostgreSQL after its restart", restart_exited=True)

    def _back(self, name: str, since: datetime) -> bool:
        """Whether component ``name`` has come up since ``since``: the api-server answering, a scheduler or
        triggerer heartbeating in a job of its own (several may share the health report's one line), the
        dag-processor heartbeating, a Celery worker ready."""
        if not self.healthy():
            return False
        kind = self.components[name].args[0]
        if kind == "api-server":
            return True
        if kind == "celery":
            return _ready_worker(self.log_dir / f"{name}.log")
        if kind in ("scheduler", "triggerer"):
            return self._job_started(kind, since)
        part = kind.replace("-", "_")  # the health report's key, e.g. dag_processor
        return datetime.fromisoformat(self.health()[part][f"latest_{part}_heartbeat"]) > since

    def _job_started(self, kind: str, since: datetime) -> bool:
        """Whether a scheduler (``SchedulerJob``) or triggerer (``TriggererJob``) job started after ``since``
        is running and has heartbeated."""
        import psycopg2  # the stack's own DB driver (lock files); imported only by a running stack

        job_type = {"scheduler": "SchedulerJob", "triggerer": "TriggererJob"}[kind]
        with (
            contextlib.closing(psycopg2.connect(postgres.dsn(self.ports.postgres))) as db,
            db.cursor() as cur,
        ):
            cur.execute(
                "SELECT count(*) FROM job WHERE job_type = %s AND state = 'running' AND start_date > %s"
                " AND latest_heartbeat > start_date",
                (job_type, since),
            )
            return cur.fetchone()[0] > 0

    def health(self) -> dict:
        with urllib.request.urlopen(f"{self.api_url}/api/v2/monitor/health", timeout=5) as response:
            return json.load(response)

    def healthy(self) -> bool:
        try:
            health = self.health()
        except (OSError, ValueError):
            return False
        return all(part.get("status") == "healthy" for part in health.values() if isinstance(part, dict))

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.ports.api}"

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.log_dir / name}.log")

    def supervise(self) -> None:
        """Start again an Airflow component that exited, as docker compose's ``restart: always`` and MWAA do
        (a scheduler or dag-processor exits when the metadata DB goes away); a crash loop, or the death of
        the DB or a stand-in, is an error."""
        for name, process in list(self.processes.items()):
            if process.poll() is None:
                continue
            where = f"{name} exited with {process.returncode}; see {self.log_dir / name}.log"
            if name not in self.components:
                raise RuntimeError(where)
            recent = [t for t in self.restarts.get(name, []) if t > time.monotonic() - CRASH_LOOP_WINDOW]
            if len(recent) >= CRASH_LOOP_RESTARTS:
                raise RuntimeError(f"{where} ({len(recent)} restarts in {CRASH_LOOP_WINDOW} s)")
            self.restarts[name] = [*recent, time.monotonic()]
            print(f"{where}; starting it again", file=sys.stderr, flush=True)
            args, env, popen = self.commands[name]
            self.start(name, args, env, **popen)

    def wait(
        self, condition: Callable[[], bool], timeout: float, what: str, restart_exited: bool = False
    ) -> None:
        """Until ``condition`` holds; a process that exits meanwhile is an error, or with ``restart_exited``
        an Airflow component that exits is started again (:meth:`supervise`)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if restart_exited:
                self.supervise()
            else:
                self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not ready after {timeout:.0f} s; logs in {self.log_dir}")
            time.sleep(0.5)

    def down(self, grace: float = 20) -> None:
        """Stop everything, the metadata DB last so that the components' last writes reach it; SIGINT is
        PostgreSQL's fast shutdown (its SIGTERM waits for every client to leave)."""
        database = self.processes.pop("postgres", None)
        _stop(self.processes.values(), signal.SIGTERM, grace)
        if database:
            _stop([database], signal.SIGINT, grace)
        if self.database:
            self.database.remove_temporary()
        self.processes.clear()


def _stop(processes: Iterable[subprocess.Popen], sig: signal.Signals, grace: float) -> None:
    processes = list(processes)
    for process in processes:
        _signal_group(process, sig)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def _ready_worker(log: Path) -> bool:
    """Whether the Celery worker logging to ``log`` has said it is ready since it was last started."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return False
    return re.search(r"@\S+ ready\.", text.rsplit(START_MARKER, 1)[-1]) is not None


def airflow_program() -> str:
    """The ``airflow`` CLI of this Python's virtualenv."""
    return str(Path(sys.executable).with_name("airflow"))


def _succeeds(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True).returncode == 0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def run_job(stack: Stack, dag_id: str, timeout: float = 600) -> dict:
    """Unpause ``dag_id`` and trigger a run of it now, as a user does from the UI; wait until it finishes.

    Unpausing also puts the job on its schedule: for a first unpause Airflow starts the run of its latest
    cron time as well (``catchup: false``).
    """
    api = Api(stack.api_url)
    dags = f"/api/v2/dags?dag_id_pattern={dag_id}"
    stack.wait(lambda: any(d["dag_id"] == dag_id for d in api.call("GET", dags)["dags"]), 180, dag_id)
    api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    now = datetime.now(UTC).isoformat()
    run = api.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": now, "conf": {}})
    run_id = run["dag_run_id"]
    print(f"triggered {dag_id}: {stack.api_url}/dags/{dag_id}/runs/{quote(run_id)}", flush=True)
    path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}"
    stack.wait(lambda: api.call("GET", path)["state"] in ("success", "failed"), timeout, f"{dag_id} {run_id}")
    for ti in api.call("GET", f"{path}/taskInstances")["task_instances"]:
        mapped = f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""
        print(f"  {ti['task_id']}{mapped}: {ti['state']}", flush=True)
    run = api.call("GET", path)
    print(f"{dag_id} {run_id}: {run['state']}", flush=True)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the local stack in the foreground.")
    parser.add_argument("--home", type=Path, default=REPO / ".local" / "airflow", help="AIRFLOW_HOME")
    parser.add_argument("--run", metavar="DAG_ID", help="once the stack is up, unpause this job and run it")
    parser.add_argument(
        "--topology", choices=TOPOLOGIES, default="local", help="local (default) or celery (MWAA's shape)"
    )
    args = parser.parse_args()
    home = args.home.resolve()
    stack = Stack(home, Ports(), home / "logs" / "stack", topology=args.topology)
    jobs = load_catalog(Path(stack.env["ECSJOBS_CONFIG_DIR"]), stack.env["ECSJOBS_ENV"]).jobs
    if args.run and args.run not in jobs:
        parser.error(f"--run: no job {args.run!r} in the catalog; its jobs are {', '.join(sorted(jobs))}")

    def stop(signum: int, _frame) -> None:
        # The first signal stops the stack; a second Ctrl-C, or make passing on the SIGTERM it got, must not
        # cut that short and leave components running.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    try:
        print("starting the local AWS, local Slack and Airflow ...", flush=True)
        stack.up()
        print(
            f"\nAirflow is up: {stack.api_url}  (login {ADMIN_USER} / {ADMIN_PASSWORD})\n"
            f"local AWS: http://{HOST}:{stack.ports.aws}   local Slack messages: "
            f"http://{HOST}:{stack.ports.slack}/messages\n"
            f"metadata DB: {postgres.dsn(stack.ports.postgres)}\n"
            f"{args.topology} topology: {', '.join(stack.components)}\n"
            f"component logs: {stack.log_dir}\nCtrl-C stops everything.",
            flush=True,
        )
        if args.run:
            try:
                run_job(stack, args.run)
            except ApiError as err:  # e.g. the job's params need values: the stack stays up for the UI
                print(f"could not run {args.run}: {err}", file=sys.stderr, flush=True)
        while True:
            stack.supervise()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    except (RuntimeError, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    finally:
        stack.down()


if __name__ == "__main__":
    main()
