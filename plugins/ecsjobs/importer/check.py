"""``import --check``: the cutover gate. Each rule or schedule against the catalog job imported from it.

For every source the job must fire at the same instants (the next 20, from the later of now and the job's
start) and send the same RunTask request for the first of them: cluster, task definition, launch, network and
overrides. The job's side is what Airflow does (its DAG's timetable, ``render``'s request); the source's side
is computed from the source alone (``EventBridgeCronTimetable`` for every ``cron(...)``, the target's
parameters and input), so a mapping mistake shows as a difference.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ecsjobs.catalog import Catalog, JobSpec, start_datetime
from ecsjobs.importer.mapping import fill, job_name, target_step, used_context
from ecsjobs.importer.sources import Source
from ecsjobs.importer.state_machines import state_target, step_name, task_states
from ecsjobs.render import render_requests
from ecsjobs.schedules import EventBridgeCronTimetable, next_fire_times, rate_period

FIRES = 20
EVENT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class Comparison:
    source: Source
    job: str | None
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.job is not None and not self.differences


def compare(source: Source, catalog: Catalog, now: datetime) -> Comparison:
    spec = _job_of(source, catalog)
    result = Comparison(source, spec.id if spec else None)
    if spec is None:
        result.differences.append(f"no job in the catalog was imported from {source.arn}")
        return result
    fires = _compare_fires(source, spec, now, result)
    first = fires[0] if fires else max(now, start_datetime(spec.job))
    if source.kind == "state_machine":
        _compare_state_machine(source, spec, catalog, first, result)
        return result
    targets = [t for t in source.targets if "EcsParameters" in t]
    if not targets:
        result.differences.append("its target runs no ECS task itself: compare the job with it by hand")
        return result
    _compare_requests(targets, spec, catalog, first, result)
    return result


def disable_command(source: Source) -> str:
    """The AWS CLI command that turns the source off once its job runs in Airflow (printed, never run): for a
    state machine, the one of the rule or schedule that starts it."""
    if source.kind == "state_machine":
        return disable_command(source.starter) if source.starter else f"# {source.name}: nothing starts it"
    if source.kind == "rule":
        return f"aws events disable-rule --name {shlex.quote(source.name)}"
    target = json.dumps(source.targets[0], default=str, separators=(",", ":"))
    window = json.dumps(source.flexible_window or {"Mode": "OFF"}, separators=(",", ":"))
    parts = ["aws scheduler update-schedule", f"--name {shlex.quote(source.name)}"]
    parts += [f"--group-name {shlex.quote(source.group)}", "--state DISABLED"]
    parts += [f"--schedule-expression {shlex.quote(source.expression or '')}"]
    if source.timezone:
        parts.append(f"--schedule-expression-timezone {shlex.quote(source.timezone)}")
    parts += [f"--flexible-time-window {shlex.quote(window)}", f"--target {shlex.quote(target)}"]
    return " ".join(parts)


def _job_of(source: Source, catalog: Catalog) -> JobSpec | None:
    """The job whose file names the source (a renamed file too), else the one of the importer's name."""
    marker = f"# Imported from {source.arn} by"
    for spec in catalog.jobs.values():
        if marker in spec.source.read_text(encoding="utf-8").split("\ndescription:", 1)[0]:
            return spec
    return catalog.jobs.get(job_name(source.name))


def _compare_fires(source: Source, spec: JobSpec, now: datetime, result: Comparison) -> list[datetime]:
    job = spec.job
    timezone = job.timezone or "UTC"
    after = max(now, start_datetime(job))
    if source.expression is None:  # a state machine nothing starts on a schedule
        if job.schedule:
            result.differences.append(f"the source runs when started; the job is scheduled {job.schedule}")
        return []
    expression = source.expression
    if job.schedule != expression and not expression.startswith("at("):
        result.notes.append(f"schedule written as {job.schedule!r}, the source's is {expression!r}")
    if expression.startswith("at("):
        if job.schedule:
            result.differences.append(f"the source runs once ({expression}); the job is scheduled")
        elif (once := _at(expression, source.timezone or "UTC")) > now:
            result.differences.append(
                f"the source runs once, at {once.isoformat()}; the job runs only when triggered"
            )
        return []
    if (source.timezone or "UTC") != timezone:
        result.differences.append(f"time zone: job {timezone}, source {source.timezone or 'UTC'}")
    ours = next_fire_times(job.schedule, timezone, after, FIRES) if job.schedule else []
    if expression.startswith("rate("):  # EventBridge counts from the rule's creation, Airflow from the start
        period = rate_period(expression)
        gaps = {b - a for a, b in zip(ours, ours[1:], strict=False)}
        if gaps != {period}:
            result.differences.append(f"the job does not fire every {period}: {sorted(map(str, gaps))}")
        result.notes.append(
            "rate(): the interval is compared; EventBridge counts it from the rule's creation"
        )
        return ours
    theirs = _eventbridge_fires(expression, source.timezone or "UTC", after)
    if [f.astimezone(UTC) for f in ours] != theirs:
        for index, (a, b) in enumerate(zip(ours, theirs, strict=False)):
            if a.astimezone(UTC) != b:
                result.differences.append(
                    f"fire {index + 1} of {FIRES}: job {a.isoformat()}, source {b.isoformat()}"
                )
                break
        else:
            result.differences.append(
                f"the job fires {len(ours)} of the next {FIRES} times, the source {len(theirs)}"
            )
    return ours


def _at(expression: str, timezone: str) -> datetime:
    """The instant of a one-time ``at(yyyy-mm-ddThh:mm:ss)`` in the schedule's time zone (Scheduler's
    one-time schedules: https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html)."""
    local = datetime.fromisoformat(expression.removeprefix("at(").removesuffix(")"))
    return local.replace(tzinfo=ZoneInfo(timezone))


def _eventbridge_fires(expression: str, timezone: str, after: datetime) -> list[datetime]:
    timetable = EventBridgeCronTimetable(expression, timezone=timezone)
    fires: list[datetime] = []
    moment: datetime | None = after
    while len(fires) < FIRES and (moment := timetable.next_after(moment)) is not None:
        fires.append(moment.astimezone(UTC))
    return fires


def _compare_requests(
    targets: list[dict[str, Any]], spec: JobSpec, catalog: Catalog, fire: datetime, result: Comparison
) -> None:
    spec_source = result.source
    """One target against the job (its ``TaskCount`` as the tasks per run); several targets, each against the
    step named by its ``Id``."""
    try:
        rendered = render_requests(spec, catalog.environment, catalog.environment_name, fire, {})
    except ValueError as err:
        result.differences.append(f"the job cannot render its request: {err}")
        return
    if len(targets) == 1:
        (target,) = targets
        count = int(target["EcsParameters"].get("TaskCount") or 1)
        if len(rendered) != count:
            result.differences.append(f"tasks per run: job {len(rendered)}, source {count}")
        sent = _source_request(target, fire, spec_source)
        _differ(_essentials(rendered[0]["request"]), sent, "request", result)
        return
    steps: dict[str, dict[str, Any]] = {}
    for entry in rendered:
        steps.setdefault(entry["step"], _essentials(entry["request"]))
    for target in targets:
        step = target_step(target)
        if step not in steps:
            result.differences.append(f"target {target.get('Id')}: no step {step} in the job")
            continue
        _differ(steps[step], _source_request(target, fire, spec_source), f"step {step} request", result)
    for step in sorted(set(steps) - {target_step(t) for t in targets}):
        result.differences.append(f"step {step}: not a target of the rule")


def _differ(ours: dict[str, Any], theirs: dict[str, Any], what: str, result: Comparison) -> None:
    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key) != theirs.get(key):
            result.differences.append(f"{what} {key}: job {ours.get(key)!r}, source {theirs.get(key)!r}")


def _compare_state_machine(
    source: Source, spec: JobSpec, catalog: Catalog, fire: datetime, result: Comparison
) -> None:
    """Each ``ecs:runTask`` state against the job's step of its name, with the execution input's values."""
    try:
        rendered = render_requests(spec, catalog.environment, catalog.environment_name, fire, {})
    except ValueError as err:
        result.differences.append(f"the job cannot render its requests: {err}")
        return
    steps: dict[str, dict[str, Any]] = {}
    for entry in rendered:  # a matrix job has one per combination: the first stands for its step
        steps.setdefault(entry["step"], _essentials(entry["request"]))
    states = dict(task_states(source.definition or {}))
    if any(state_kind == "Map" for state_kind in _kinds(source.definition or {})):
        result.notes.append("a Map state: each step is compared for its first item only")
    for name, state in states.items():
        step = step_name(name)
        if step not in steps:
            result.differences.append(f"state {name}: no step {step} in the job")
            continue
        parameters = _with_input(state.get("Parameters", {}), source.execution_input or {}, fire)
        sent = _source_request(state_target(parameters, catalog.environment), fire)
        _differ(steps[step], sent, f"step {step} request", result)
    for step in sorted(set(steps) - {step_name(name) for name in states}):
        result.differences.append(f"step {step}: not a state of the state machine")


def _with_input(value: Any, execution_input: dict[str, Any], start: datetime) -> Any:
    """``"Key.$": "$.x"`` as ``"Key": <the input's x>``, ``$$.Execution.StartTime`` as the run's logical date
    (as the importer maps it: the instant, in Airflow's format); other paths stay as text."""
    if isinstance(value, list):
        return [_with_input(item, execution_input, start) for item in value]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, item in value.items():
        if (
            key.endswith(".$")
            and isinstance(item, str)
            and item.startswith("$.")
            and item[2:] in execution_input
        ):
            result[key[:-2]] = execution_input[item[2:]]
        elif key.endswith(".$") and item == "$$.Execution.StartTime":
            result[key[:-2]] = start.isoformat()
        else:
            result[key] = _with_input(item, execution_input, start)
    return result


def _kinds(definition: dict[str, Any]) -> Iterator[str]:
    for state in definition.get("States", {}).values():
        yield state.get("Type", "")
        for branch in state.get("Branches", []):
            yield from _kinds(branch)
        if processor := state.get("ItemProcessor") or state.get("Iterator"):
            yield from _kinds(processor)


def _source_request(target: dict[str, Any], fire: datetime, source: Source | None = None) -> dict[str, Any]:
    """What the rule or schedule asked ECS for at ``fire``, in :func:`_shape`: its input with the values it
    fills in as it sends it (one not known before, such as a fresh ID, as a text no job can send)."""
    parameters = target["EcsParameters"]
    time = fire.astimezone(UTC).strftime(EVENT_TIME_FORMAT)
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        paths = transformer.get("InputPathsMap", {})
        template, values = transformer["InputTemplate"], {k: time for k, v in paths.items() if v == "$.time"}
    else:
        template, values = target.get("Input") or "{}", {}
    for name, value in (used_context(template, source) if source else {}).items():
        values[name] = value.sent(time) if value.sent else f"(<{name}>: known only once sent)"
    text = fill(template, values)
    vpc = (parameters.get("NetworkConfiguration") or {}).get("awsvpcConfiguration")
    return _shape(
        target["Arn"],
        parameters["TaskDefinitionArn"],
        _launch(parameters.get("LaunchType"), parameters.get("CapacityProviderStrategy")),
        _network(vpc, "Subnets", "SecurityGroups", "AssignPublicIp"),
        json.loads(text),
        parameters.get("PropagateTags"),
    )


def _essentials(request: dict[str, Any]) -> dict[str, Any]:
    """The fields of a RunTask request a rule or schedule can set, in one comparable shape."""
    vpc = (request.get("networkConfiguration") or {}).get("awsvpcConfiguration")
    return _shape(
        request["cluster"],
        request["taskDefinition"],
        _launch(request.get("launchType"), request.get("capacityProviderStrategy")),
        _network(vpc, "subnets", "securityGroups", "assignPublicIp"),
        request.get("overrides") or {},
        request.get("propagateTags"),
    )


def _shape(
    cluster: str,
    task_definition: str,
    launch: str,
    network: str | None,
    overrides: dict[str, Any],
    propagate_tags: str | None,
) -> dict[str, Any]:
    """The comparable request: names rather than ARNs, and only the fields that are set."""
    shape = {
        "cluster": cluster.rsplit("/", 1)[-1],
        "taskDefinition": task_definition.rsplit("/", 1)[-1],
        "launch": launch,
        "network": network,
        "containers": _containers(overrides.get("containerOverrides") or []),
        "cpu": overrides.get("cpu") and str(overrides["cpu"]),
        "memory": overrides.get("memory") and str(overrides["memory"]),
        "propagateTags": None if propagate_tags == "NONE" else propagate_tags,
    }
    return {key: value for key, value in shape.items() if value}


def _launch(launch_type: str | None, strategy: list[dict[str, Any]] | None) -> str:
    if strategy:
        providers = sorted(item.get("capacityProvider") or item.get("CapacityProvider") for item in strategy)
        return "capacity providers " + ",".join(providers)
    # neither: ECS runs the cluster's default capacity provider strategy (RunTask's capacityProviderStrategy)
    return launch_type or "the cluster's default capacity provider strategy"


def _network(vpc: dict[str, Any] | None, subnets: str, groups: str, public: str) -> str | None:
    if not vpc:
        return None
    ip = vpc.get(public) or "DISABLED"
    return f"subnets {sorted(vpc.get(subnets, []))}, security groups {sorted(vpc.get(groups, []))}, ip {ip}"


def _containers(overrides: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Container overrides by name, environment as a mapping (order carries no meaning)."""
    result = []
    for item in overrides:
        entry = {k: v for k, v in item.items() if k not in ("environment", "name")}
        entry["name"] = item.get("name")
        environment = {variable["name"]: variable["value"] for variable in item.get("environment", [])}
        if environment:
            entry["environment"] = environment
        result.append(entry)
    return sorted(result, key=lambda entry: str(entry["name"]))
