"""ECS tasks that behave like batch jobs, as a thin layer over moto's ECS backend.

Stock moto starts a task at RUNNING, advances it one state per DescribeTasks call, reports only the first
container (always PENDING, exit code 0) and writes no logs, so a poller cannot be tested against it. Here
moto's ``Task`` is replaced by :class:`SimTask`, whose state is a pure function of wall-clock time and of
a scenario (``local.aws.scenarios``) chosen at RunTask time, and the awslogs output of its containers is
written into moto's CloudWatch Logs backend as time passes. moto keeps doing validation, clusters, task
definitions, network interfaces, tags and listing.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local.aws.moto_surface import (
    InvalidParameterException,
    ResourceNotFoundException,
    ec2_backends,
    ecs_models,
    get_partition,
    logs_backends,
    mock_random,
)
from local.aws.rules import Facts, RuleBook, matches, validate_match, validate_times
from local.aws.scenarios import (
    DEFAULT_SCENARIO,
    FAILED_TO_START,
    Plan,
    resolve_scenario,
    validate_scenario,
)
from local.aws.task_events import TaskEvents, version_of

log = logging.getLogger(__name__)

FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
LAUNCH_TYPES = ("EC2", "FARGATE", "EXTERNAL")
MISSING_LOG_GROUP = (
    "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: "
    "failed to create Cloudwatch log stream: ResourceNotFoundException: "
    "The specified log group does not exist. : exit status 1"
)
SIGTERM_LINE = "received SIGTERM, shutting down"
# RunTask: "A total of 8192 characters are allowed for overrides", JSON formatting included; ECS's answer:
MAX_OVERRIDES_LENGTH = 8192
OVERRIDES_TOO_LONG = "Container Overrides length must be at most 8192"
TICK = 0.1  # seconds between writes of due log lines and state change events
_clock = threading.local()
_simulator: Simulator | None = None


def now() -> float:
    """Wall-clock time, frozen for the duration of one API call so that one answer is self-consistent."""
    return getattr(_clock, "frozen", None) or time.time()


@contextlib.contextmanager
def frozen_clock(at: float | None = None) -> Iterator[None]:
    outer = getattr(_clock, "frozen", None)
    _clock.frozen = outer or at or time.time()
    try:
        yield
    finally:
        _clock.frozen = outer


def _past(epoch: float | None) -> float | None:
    """The moment once it has passed, as ECS only reports what has happened."""
    return epoch if epoch is not None and epoch <= now() else None


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def effective_launch(
    launch_type: str | None,
    strategy: list[dict[str, Any]] | None,
    cluster_default: list[dict[str, Any]] | None,
) -> tuple[str, str | None]:
    """(launch type, capacity provider) as ECS records them; the cluster's default strategy applies unless
    the call names a launch type or a strategy."""
    if not launch_type:
        strategy = strategy or cluster_default
    provider = strategy[0]["capacityProvider"] if strategy and not launch_type else None
    return launch_type or ("FARGATE" if provider in FARGATE_PROVIDERS else "EC2"), provider


@dataclass(frozen=True)
class LogTarget:
    account: str
    region: str
    group: str
    stream: str


@dataclass(frozen=True)
class LogEvent:
    due: float
    target: LogTarget
    message: str | None  # None: create the stream (the container started)


class SimContainer:
    """One container of a task definition; its state follows the task's plan."""

    def __init__(self, task: SimTask, definition: dict[str, Any]) -> None:
        self._task = task
        self.name: str = definition["name"]
        self.image = definition.get("image")
        self.essential = definition.get("essential", True)
        self.container_arn = (
            f"arn:{get_partition(task.region_name)}:ecs:{task.region_name}:{task.account_id}:container/"
            f"{task.cluster_name}/{task.id}/{mock_random.uuid4()}"
        )
        self.task_arn = task.task_arn
        self.cpu = str(definition.get("cpu", 0))
        self.memory = str(definition["memory"]) if definition.get("memory") else None
        self.memory_reservation = (
            str(definition["memoryReservation"]) if definition.get("memoryReservation") else None
        )
        log_configuration = definition.get("logConfiguration") or {}
        self.awslogs: dict[str, str] | None = (
            log_configuration.get("options") or {}
            if log_configuration.get("logDriver") == "awslogs"
            else None
        )

    @property
    def last_status(self) -> str:
        return self._task.plan.container_status(now())

    @property
    def exit_code(self) -> int | None:
        plan = self._task.plan
        return plan.exit_codes.get(self.name) if now() >= plan.ended else None

    @property
    def reason(self) -> str | None:
        plan = self._task.plan
        return plan.container_reasons.get(self.name) if now() >= plan.ended else None


class SimTask(ecs_models.Task):
    """moto's Task with every container and a wall-clock timeline; ``plan`` is set by ``Simulator.adopt``."""

    def __init__(self, cluster: Any, task_definition: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(cluster, task_definition, *args, **kwargs)
        self.created = now()
        self.account_id = self._account_id
        self.family = task_definition.family
        self.revision = task_definition.revision
        self.containers = [SimContainer(self, d) for d in task_definition.container_definitions]
        self.cpu = self.overrides.get("cpu") or task_definition.cpu
        self.memory = self.overrides.get("memory") or task_definition.memory
        # As ECS describes a task: its CPU architecture as an attribute, its ephemeral storage (Fargate: 20
        # GiB unless the task definition or the overrides ask for more).
        platform = task_definition.runtime_platform or {}
        self.attributes = [
            {"name": "ecs.cpu-architecture", "value": platform.get("cpuArchitecture", "X86_64").lower()}
        ]
        self.ephemeral_storage = (
            self.overrides.get("ephemeralStorage") or task_definition.ephemeral_storage or {"sizeInGiB": 20}
        )
        self.availability_zone = self._availability_zone()
        self.client_token: str | None = None
        self.scenario: dict[str, Any] = {}
        self.plan: Plan
        self.log_targets: dict[str, LogTarget] = {}
        self.log_queue: deque[LogEvent] = deque()
        self.announced = float("-inf")  # state changes up to this time have been sent as events

    def _availability_zone(self) -> str:
        network = getattr(self, "network_configuration", None)
        if not network:
            return f"{self.region_name}a"
        subnet_id = network["awsvpcConfiguration"]["subnets"][0]
        return ec2_backends[self.account_id][self.region_name].get_subnet(subnet_id).availability_zone

    def advance(self) -> None:
        """moto calls this on every DescribeTasks; the state here depends on the clock only."""

    # moto's Task.__init__ and stop_task assign the next three; the plan decides them instead.
    @property
    def last_status(self) -> str:
        return self.plan.status(now())

    @last_status.setter
    def last_status(self, value: str) -> None:
        pass

    @property
    def desired_status(self) -> str:
        return "STOPPED" if now() >= self.plan.ended else "RUNNING"

    @desired_status.setter
    def desired_status(self, value: str) -> None:
        pass

    @property
    def stopped_reason(self) -> str | None:
        return self.plan.stopped_reason if now() >= self.plan.ended else None

    @stopped_reason.setter
    def stopped_reason(self, value: str) -> None:
        pass

    @property
    def version(self) -> int:
        """Grows with each state change, as in ECS's DescribeTasks answers and events."""
        return version_of(self.last_status)

    @property
    def stop_code(self) -> str | None:
        return self.plan.stop_code if now() >= self.plan.ended else None

    @property
    def connectivity(self) -> str | None:
        return "CONNECTED" if self.connectivity_at else None

    @property
    def connectivity_at(self) -> datetime | None:
        return _utc(_past(self.plan.provisioned if self.plan.provisioned <= self.plan.ended else None))

    @property
    def created_at(self) -> datetime | None:
        return _utc(self.plan.created)

    @property
    def pull_started_at(self) -> datetime | None:
        return _utc(_past(self.plan.provisioned if self.plan.pulled is not None else None))

    @property
    def pull_stopped_at(self) -> datetime | None:
        return _utc(_past(self.plan.pulled))

    @property
    def started_at(self) -> datetime | None:
        return _utc(_past(self.plan.started))

    @property
    def stopping_at(self) -> datetime | None:
        return _utc(_past(self.plan.ended))

    @property
    def execution_stopped_at(self) -> datetime | None:
        return _utc(_past(self.plan.ended))

    @property
    def stopped_at(self) -> datetime | None:
        return _utc(_past(self.plan.stopped))

    def facts(self) -> Facts:
        return Facts.of_run(
            self.cluster_name,
            self.cluster_arn,
            self.family,
            self.started_by,
            self.group,
            self.capacity_provider_name or self.launch_type,
            self.overrides,
        )

    def to_json(self) -> dict[str, Any]:
        with frozen_clock():
            return {
                "taskArn": self.task_arn,
                "family": self.family,
                "revision": self.revision,
                "cluster": self.cluster_name,
                "startedBy": self.started_by,
                "group": self.group,
                "clientToken": self.client_token,
                "launchType": self.launch_type,
                "capacityProviderName": self.capacity_provider_name,
                "overrides": self.overrides,
                "tags": self.tags,
                "scenario": self.scenario,
                "lastStatus": self.last_status,
                "createdAt": self.plan.created,
                "startedAt": _past(self.plan.started),
                "stoppedAt": _past(self.plan.stopped),
            }


class Simulator:
    """Scenario rules, the simulated tasks, and the ticker that writes their logs as they become due and
    sends their state change events."""

    def __init__(self, default_duration: float = 3.0) -> None:
        self.default_duration = default_duration
        self.scenarios = RuleBook("scenario")
        self._tasks: dict[str, SimTask] = {}
        self._logging: dict[str, SimTask] = {}  # the tasks with log lines still to write
        self._announcing: dict[str, SimTask] = {}  # the tasks not yet announced as STOPPED
        self.events = TaskEvents()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._ticker = threading.Thread(target=self._run_ticker, name="ecs-sim-logs", daemon=True)

    def start(self) -> None:
        self._ticker.start()

    def close(self) -> None:
        self._closed.set()
        self._ticker.join()

    def add_scenario(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or set(payload) - {"match", "scenario", "times"}:
            raise ValueError("expected {'match': {...}, 'scenario': {...}, 'times': N}")
        match = validate_match(payload.get("match", {}))
        scenario = validate_scenario(payload.get("scenario", {}))
        rule = self.scenarios.add(match, {"scenario": scenario}, validate_times(payload.get("times")))
        return {"id": rule.id}

    def adopt(self, task: SimTask) -> None:
        """Give a task just created by moto its scenario, plan and logs."""
        facts = task.facts()
        rule = self.scenarios.take(lambda r: matches(r.match, facts))
        scenario = resolve_scenario(
            rule.spec["scenario"] if rule else DEFAULT_SCENARIO, self.default_duration
        )
        task.log_targets, missing_group = _log_targets(task)
        if missing_group:
            scenario = {**scenario, "stop_code": FAILED_TO_START, "stopped_reason": MISSING_LOG_GROUP}
        task.scenario = scenario
        task.plan = Plan.build(scenario, task.created, {c.name: c.essential for c in task.containers})
        with self._lock:
            task.log_queue = deque(_log_events(task))
            self._tasks[task.task_arn] = task
            self._logging[task.task_arn] = task
            self._announcing[task.task_arn] = task

    def stop(self, task: SimTask, reason: str | None) -> None:
        with self._lock:
            t = now()
            plan = task.plan.stopped_by_user(t, reason, task.scenario["stopping"])
            if plan is task.plan:
                return
            task.plan = plan
            task.log_queue = deque(event for event in task.log_queue if event.due <= t)
            if plan.started is not None:
                task.log_queue.extend(
                    LogEvent(t, task.log_targets[c.name], SIGTERM_LINE)
                    for c in task.containers
                    if c.essential and c.name in task.log_targets
                )
                self._logging[task.task_arn] = task

    def set_client_token(self, task_arns: list[str], token: str) -> None:
        with self._lock:
            for arn in task_arns:
                if arn in self._tasks:
                    self._tasks[arn].client_token = token

    def tasks_json(self) -> list[dict[str, Any]]:
        with self._lock:
            tasks = list(self._tasks.values())
        return [task.to_json() for task in tasks]

    def forget_tasks(self) -> None:
        """After moto's own reset: the tasks (and their log groups) are gone."""
        with self._lock:
            self._tasks.clear()
            self._logging.clear()
            self._announcing.clear()

    def flush_logs(self) -> None:
        """Write every log line that is due; called by the ticker and before each CloudWatch Logs call."""
        t = time.time()
        with self._lock:
            for arn, task in list(self._logging.items()):
                batches: dict[LogTarget, list[dict[str, Any]]] = {}
                while task.log_queue and task.log_queue[0].due <= t:
                    event = task.log_queue.popleft()
                    if event.message is None:
                        batches[event.target] = []
                    else:
                        message = {"timestamp": int(event.due * 1000), "message": event.message}
                        batches.setdefault(event.target, []).append(message)
                for target, events in batches.items():
                    _write_logs(target, events)
                if not task.log_queue:
                    del self._logging[arn]

    def announce(self) -> None:
        """Send a state change event for each state a task took on since the last call, as of its change."""
        t = time.time()
        with self._lock:
            changes = []
            for arn, task in list(self._announcing.items()):
                changes += [(at, status, task) for status, at in task.plan.changes(task.announced, t)]
                task.announced = t
                if task.plan.stopped <= t:
                    del self._announcing[arn]
        for at, status, task in sorted(changes, key=lambda change: change[0]):
            with frozen_clock(at):
                self.events.changed(task, status, at, task.facts())
        self.events.tick(t)

    def _run_ticker(self) -> None:
        while not self._closed.wait(TICK):
            for work in (self.flush_logs, self.announce):
                try:
                    work()
                except Exception:
                    log.exception("simulating tasks (%s) failed", work.__name__)


def _log_targets(task: SimTask) -> tuple[dict[str, LogTarget], bool]:
    """Where each awslogs container logs, and whether a log group is missing (the task then fails)."""
    targets, missing = {}, False
    for container in task.containers:
        options = container.awslogs
        if options is None or "awslogs-group" not in options:
            continue
        region = options.get("awslogs-region", task.region_name)
        group = options["awslogs-group"]
        logs = logs_backends[task.account_id][region]
        if group not in logs.groups:
            if options.get("awslogs-create-group") == "true":
                logs.ensure_log_group(group)
            else:
                missing = True
        prefix = options.get("awslogs-stream-prefix")
        stream = f"{prefix}/{container.name}/{task.id}" if prefix else task.id
        targets[container.name] = LogTarget(task.account_id, region, group, stream)
    return targets, missing


def _log_events(task: SimTask) -> list[LogEvent]:
    """Stream creation when the containers start; the essential ones log their lines over the run, then the
    summary as their last line when they exit."""
    plan, scenario = task.plan, task.scenario
    if plan.started is None:
        return []
    events = []
    lines = scenario["log_lines"]
    for container in task.containers:
        target = task.log_targets.get(container.name)
        if target is None:
            continue
        events.append(LogEvent(plan.started, target, None))
        if not container.essential:
            continue
        step = (plan.ended - plan.started) / (len(lines) + 1)
        events.extend(LogEvent(plan.started + step * (i + 1), target, line) for i, line in enumerate(lines))
        if scenario["summary"] is not None:
            summary = json.dumps(scenario["summary"], separators=(",", ":"))
            events.append(LogEvent(plan.ended, target, summary))
    return sorted(events, key=lambda event: event.due)


def _write_logs(target: LogTarget, events: list[dict[str, Any]]) -> None:
    logs = logs_backends[target.account][target.region]
    try:
        logs.ensure_log_stream(target.group, target.stream)
        if events:
            logs.put_log_events(target.group, target.stream, events)
    except ResourceNotFoundException:
        log.warning("log group %s is gone; dropping %d lines", target.group, len(events))


def _with_arguments(original: Callable[..., Any], adapt: Callable[[Any, dict[str, Any]], Any]) -> Callable:
    """Wrap a backend method so that ``adapt`` sees (and may change) its arguments by name."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return adapt(bound.arguments.pop("self"), bound.arguments)

    return wrapper


def install(simulator: Simulator) -> None:
    """Route moto's ECS task handling through ``simulator``; calling it again switches simulators."""
    global _simulator
    _simulator = simulator
    if ecs_models.Task is SimTask:
        return
    ecs_models.Task = SimTask
    backend = ecs_models.EC2ContainerServiceBackend
    run_task, start_task, stop_task = backend.run_task, backend.start_task, backend.stop_task

    def run(ecs: Any, args: dict[str, Any]) -> list[SimTask]:
        """Place every task on moto's Fargate path, which needs no container instances, but record the
        real launch type and capacity provider; invalid combinations still reach moto's validation."""
        overrides = json.dumps(args["overrides"] or {}, separators=(",", ":"))
        if len(overrides) > MAX_OVERRIDES_LENGTH:
            raise InvalidParameterException(OVERRIDES_TOO_LONG)
        launch_type, strategy = args["launch_type"], args["capacity_provider_strategy"]
        if launch_type not in (None, "", *LAUNCH_TYPES) or (launch_type and strategy):
            return run_task(ecs, **args)
        cluster = ecs._get_cluster(args["cluster_str"])
        launch, provider = effective_launch(launch_type, strategy, cluster.default_capacity_provider_strategy)
        tasks = run_task(ecs, **{**args, "launch_type": "FARGATE", "capacity_provider_strategy": None})
        for task in tasks:
            task.launch_type, task.capacity_provider_name = launch, provider
            _simulator.adopt(task)
        return tasks

    def start(ecs: Any, args: dict[str, Any]) -> list[SimTask]:
        tasks = start_task(ecs, **args)
        for task in tasks:
            task.launch_type = "EC2"
            _simulator.adopt(task)
        return tasks

    def stop(ecs: Any, args: dict[str, Any]) -> SimTask:
        task = stop_task(ecs, **args)
        _simulator.stop(task, args["reason"])
        return task

    backend.run_task = _with_arguments(run_task, run)
    backend.start_task = _with_arguments(start_task, start)
    backend.stop_task = _with_arguments(stop_task, stop)
