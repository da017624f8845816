"""DescribeTasks calls and detection delay of N concurrent ECS waits: ecsjobs' trigger, with ECS task events
or polling, vs the provider's.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/watch/bench.py [--sizes 1 100 500] [--interval 6]

For each N and each trigger (``ecsjobs.waiting.triggers.EcsTaskWaitTrigger`` reading the local environment's
queue of ECS task state change events, the same trigger polling, the Amazon provider's ``TaskDoneTrigger``),
one phase: a fresh local AWS (``python -m local.aws`` on a free port, seeded from the catalog, with the events
queue and its rule) so that every phase meets the same server; N tasks started with RunTask, stopping evenly
spread over ``--spread`` seconds after ``--warmup`` seconds; N triggers run side by side in one event loop, as
the triggerer runs them, polling every ``--interval`` seconds with the same botocore config (the event mode
only reconciles, every 60 s). Measured from the server's call log and task timeline: DescribeTasks calls per
minute (while every task still runs, and over the whole wait), SQS ReceiveMessage and ECS ListTasks calls per
minute while they run, the delay from a task's ``stoppedAt`` to its trigger's event, and the CPU seconds both
processes spent.
Airflow logs at WARNING for every trigger alike. Prints a Markdown table.

``--triggerers K ...`` runs the event mode's waits in K processes instead (``events/K`` in the table), as K
triggerers would hold them: each its own interpreter, event loop, poller and listener on the one queue, the
waits dealt out round-robin. ``--event-faults`` drops, duplicates and reorders a share of the STOPPED events
(``--fault-rate``) in those phases, so that the table shows whether any completion was missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

FAULT_KINDS = ("drop", "duplicate", "reorder")

REPO = Path(__file__).resolve().parents[2]
CLUSTER, FAMILY, CONTAINER = "batch-jobs", "data-processor", "batch-container"
NETWORK = {
    "awsvpcConfiguration": {
        "subnets": ["subnet-0local0000000001a"],
        "securityGroups": ["sg-0local00000000001"],
    }
}
BOTOCORE_CONFIG = {"retries": {"mode": "adaptive", "max_attempts": 5}}  # the same for every trigger
EVENTS_QUEUE = "batch-jobs-task-events"  # the local environment's, created by local.seed with its rule


@dataclass
class Phase:
    trigger: str
    tasks: int
    steady_calls_per_min: float  # while every task still runs
    calls_per_min: float  # from the first trigger's start to the last event
    calls: int
    all_polled_after: float  # seconds until the server had answered N describes (every wait asked once)
    steady_receives_per_min: float  # SQS ReceiveMessage calls while every task still runs
    steady_lists_per_min: float  # ECS ListTasks calls (the event mode's reconciliations) while they run
    delays: list[float]  # seconds from stoppedAt to the event
    errors: int
    client_cpu: float
    server_cpu: float


def _trigger(kind: str, arn: str, interval: float) -> Any:
    if kind in ("ecsjobs", "events"):
        from ecsjobs.waiting.triggers import EcsTaskWaitTrigger

        return EcsTaskWaitTrigger(
            cluster=CLUSTER,
            task_arn=arn,
            aws_conn_id="aws_local",
            region_name="us-east-1",
            poll_interval=interval,
            botocore_config=BOTOCORE_CONFIG,
            events_queue=EVENTS_QUEUE if kind == "events" else None,
        )
    from airflow.providers.amazon.aws.triggers.ecs import TaskDoneTrigger

    return TaskDoneTrigger(
        cluster=CLUSTER,
        task_arn=arn,
        waiter_delay=interval,  # type: ignore[arg-type]  # an int in its signature, used as int(...)
        waiter_max_attempts=1_000_000,
        aws_conn_id="aws_local",
        region_name="us-east-1",
        botocore_config=BOTOCORE_CONFIG,
    )


def _start_tasks(server: Any, ecs: Any, n: int, warmup: float, spread: float) -> list[str]:
    """N tasks, 10 per RunTask call; call k's tasks run ``warmup + spread * (k + 0.5) / calls`` seconds."""
    calls = math.ceil(n / 10)
    arns: list[str] = []
    for k in range(calls):
        group = uuid.uuid4().hex
        duration = warmup + spread * (k + 0.5) / calls
        server.post(
            "/_local/scenarios",
            {"match": {"env": {"BENCH_GROUP": group}}, "scenario": {"duration": duration}},
        )
        response = ecs.run_task(
            cluster=CLUSTER,
            taskDefinition=FAMILY,
            networkConfiguration=NETWORK,
            overrides={
                "containerOverrides": [
                    {"name": CONTAINER, "environment": [{"name": "BENCH_GROUP", "value": group}]}
                ]
            },
            count=min(10, n - len(arns)),
        )
        assert not response["failures"], response["failures"]
        arns += [task["taskArn"] for task in response["tasks"]]
    return arns


async def _wait_all(triggers: list[Any]) -> list[float | BaseException]:
    """Each trigger's first event's arrival time (epoch), or the error it raised."""

    async def first_event(trigger: Any) -> float:
        async for _ in trigger.run():
            return time.time()
        raise RuntimeError("the trigger ended without an event")

    return await asyncio.gather(*(first_event(t) for t in triggers), return_exceptions=True)


def _wait_in_processes(arns: list[str], k: int, args: argparse.Namespace) -> tuple[list, float]:
    """The waits dealt out round-robin to ``k`` processes (``--wait`` mode of this file), each printing its
    waits' arrival times as JSON; their outcomes in ``arns``' order, and the CPU seconds they spent."""
    shares = [arns[i::k] for i in range(k)]
    command = [sys.executable, __file__, "--wait", "--interval", str(args.interval)]
    processes = [
        psutil.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in shares
    ]
    for process, share in zip(processes, shares, strict=True):
        process.stdin.write(json.dumps(share))
        process.stdin.close()
    outcomes: dict[str, float | BaseException] = {}
    cpu = 0.0
    for process, share in zip(processes, shares, strict=True):
        result = json.loads(process.stdout.read())
        cpu += result["cpu"]
        process.wait()
        for arn, at in zip(share, result["arrivals"], strict=True):
            outcomes[arn] = at if isinstance(at, float) else RuntimeError(at)
    return [outcomes[arn] for arn in arns], cpu


def wait_main(interval: float) -> None:
    """``--wait``: one triggerer's share of the waits, read as JSON from stdin."""
    arns = json.load(sys.stdin)
    cpu = time.process_time()
    outcomes = asyncio.run(_wait_all([_trigger("events", arn, interval) for arn in arns]))
    arrivals = [at if isinstance(at, float) else repr(at) for at in outcomes]
    print(json.dumps({"arrivals": arrivals, "cpu": time.process_time() - cpu}))


def run_phase(kind: str, n: int, args: argparse.Namespace, log_dir: Path, processes: int = 0) -> Phase:
    import boto3

    from ecsjobs.catalog.loading import load_catalog
    from local.seed import seed
    from local.settings import Ports, connections
    from tests.support import LocalServer

    server = LocalServer("local.aws", "/_local/stats", log_dir / f"aws-{kind}-{n}.log")
    try:
        os.environ.update(connections(Ports(aws=server.port, slack=0, api=0)))
        seed(load_catalog(REPO / "config", "local"), server.url)
        if processes and args.event_faults:
            for fault in FAULT_KINDS:
                server.post("/_local/event-faults", {"kind": fault, "rate": args.fault_rate, "status": "*"})
        ecs = boto3.client(
            "ecs",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="l",
            aws_secret_access_key="l",
        )
        arns = _start_tasks(server, ecs, n, args.warmup, args.spread)
        server_process = psutil.Process(server.process.pid)
        server_cpu = sum(server_process.cpu_times()[:2])
        client_cpu = time.process_time()
        started = time.time()
        if processes:
            outcomes, client_cpu = _wait_in_processes(arns, processes, args)
        else:
            outcomes = asyncio.run(_wait_all([_trigger(kind, arn, args.interval) for arn in arns]))
            client_cpu = time.process_time() - client_cpu
        ended = time.time()
        server_cpu = sum(server_process.cpu_times()[:2]) - server_cpu
        stopped_at = {t["taskArn"]: t["stoppedAt"] for t in server.get("/_local/tasks")}
        calls = server.get(f"/_local/calls?action=DescribeTasks&since={started}")
        receives = server.get(f"/_local/calls?action=ReceiveMessage&service=sqs&since={started}")
        lists = server.get(f"/_local/calls?action=ListTasks&service=ecs&since={started}")
    finally:
        server.stop()

    first_stop = min(stopped_at[arn] for arn in arns)
    # Every wait's first description ends the first round; with K triggerers it is K calls side by side, so
    # "all running" counts the calls that describe no task for the first time (one triggerer: as before, the
    # round's last call included).
    described: set[str] = set()
    all_polled = math.nan
    again = []
    for call in sorted(calls, key=lambda c: c["t"]):
        if described.issuperset(call["task_arns"]):
            again.append(call)
        described.update(call["task_arns"])
        if len(described) >= n and math.isnan(all_polled):
            all_polled = call["t"]
    steady_from = max(all_polled, started)
    if processes:
        steady = [c for c in again if steady_from <= c["t"] < first_stop]
    else:
        steady = [c for c in calls if steady_from <= c["t"] < first_stop]
    steady_receives = [c for c in receives if steady_from <= c["t"] < first_stop]
    steady_lists = [c for c in lists if steady_from <= c["t"] < first_stop]
    steady_minutes = (first_stop - steady_from) / 60 if first_stop > steady_from else math.nan
    delays = [at - stopped_at[arn] for arn, at in zip(arns, outcomes, strict=True) if isinstance(at, float)]
    return Phase(
        trigger=f"{kind}/{processes}" + (" faults" if args.event_faults else "") if processes else kind,
        tasks=n,
        steady_calls_per_min=len(steady) / steady_minutes,
        calls_per_min=len(calls) * 60 / (ended - started),
        steady_receives_per_min=len(steady_receives) / steady_minutes,
        steady_lists_per_min=len(steady_lists) / steady_minutes,
        calls=len(calls),
        all_polled_after=all_polled - started,
        delays=delays,
        errors=sum(isinstance(o, BaseException) for o in outcomes),
        client_cpu=client_cpu,
        server_cpu=server_cpu,
    )


def _table(phases: list[Phase], interval: float) -> str:
    lines = [
        "| N | trigger | DescribeTasks/min, all running | DescribeTasks/min, whole wait | calls "
        "| ReceiveMessage/min, all running | ListTasks/min, all running | all polled after (s) "
        "| delay median / p95 / max (s) | errors | CPU s (bench / server) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        d = sorted(p.delays)
        delay = (
            f"{statistics.median(d):.1f} / {d[min(len(d) - 1, int(0.95 * len(d)))]:.1f} / {d[-1]:.1f}"
            if d
            else "-"
        )
        lines.append(
            f"| {p.tasks} | {p.trigger} | {p.steady_calls_per_min:.0f} | {p.calls_per_min:.0f} | {p.calls} "
            f"| {p.steady_receives_per_min:.1f} | {p.steady_lists_per_min:.1f} | {p.all_polled_after:.1f} "
            f"| {delay} | {p.errors} "
            f"| {p.client_cpu:.0f} / {p.server_cpu:.0f} |"
        )
    by_key = {(p.tasks, p.trigger): p for p in phases}
    for n in sorted({p.tasks for p in phases}):
        ours, theirs = by_key.get((n, "ecsjobs")), by_key.get((n, "provider"))
        if ours and theirs and ours.calls:
            lines.append(
                f"\nN={n}: {theirs.calls / ours.calls:.1f}x fewer DescribeTasks calls in all "
                f"({theirs.steady_calls_per_min / ours.steady_calls_per_min:.1f}x while all run); "
                f"target median delay <= {interval + 1:.0f} s"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 500])
    parser.add_argument(
        "--triggers",
        nargs="*",
        default=["events", "ecsjobs", "provider"],
        choices=["events", "ecsjobs", "provider"],
        help="events: ecsjobs with the SQS queue of ECS task events; ecsjobs: batched polling; provider: "
        "TaskDoneTrigger",
    )
    parser.add_argument("--interval", type=float, default=6.0, help="poll interval of both triggers (s)")
    parser.add_argument("--warmup", type=float, default=60.0, help="shortest task run (s)")
    parser.add_argument("--spread", type=float, default=60.0, help="the tasks stop over this many seconds")
    parser.add_argument(
        "--triggerers", type=int, nargs="*", default=[], help="event mode in K triggerer processes, per K"
    )
    parser.add_argument("--event-faults", action="store_true", help="drop, duplicate, reorder events")
    parser.add_argument("--fault-rate", type=float, default=0.05, help="share of events each fault hits")
    parser.add_argument("--wait", action="store_true", help=argparse.SUPPRESS)  # a triggerer process
    args = parser.parse_args(argv)
    if args.wait:
        wait_main(args.interval)
        return

    home = Path(tempfile.mkdtemp(prefix="ecsjobs-bench-watch-"))
    from local.settings import Ports, airflow_env

    os.environ.update(
        airflow_env(home, Ports(aws=0, slack=0, api=0)), AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING"
    )
    phases = []
    for n in args.sizes:
        runs = [(kind, 0) for kind in args.triggers] + [("events", k) for k in args.triggerers]
        for kind, k in runs:
            phase = run_phase(kind, n, args, home, k)
            print(
                f"done: N={n} {phase.trigger}: {phase.calls} calls, {phase.errors} errors",
                file=sys.stderr,
                flush=True,
            )
            phases.append(phase)
    print(_table(phases, args.interval))


if __name__ == "__main__":
    main()
