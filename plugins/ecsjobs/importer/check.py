"""``import --check``: the cutover gate. Each rule or schedule against the catalog job imported from it.

For every source the job must fire at the same instants (the next 20, from the later of now and the job's
start) and send the same RunTask request for the first of them: cluster, task definition, launch, network and
overrides. The job's side is what Airflow does (its DAG's timetable, ``render``'s request); the source's side
is computed from the source alone, as AWS documents it (``source_times`` for its fire times, its target's
parameters and input), so a mapping mistake shows as a difference, and what cannot be known is one too.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ecsjobs.build.render import render_requests
from ecsjobs.catalog.loading import Catalog, JobSpec, end_datetime, start_datetime
from ecsjobs.catalog.schedules import next_fire_times
from ecsjobs.ecs import resource_name
from ecsjobs.execution.history import LAUNCH_TAG, TRY_TAG
from ecsjobs.importer.imported import job_name, used_context
from ecsjobs.importer.limits import limit_differences
from ecsjobs.importer.run_task import fill, tags_of, target_step
from ecsjobs.importer.source_times import (
    UnknownFires,
    dst_differences,
    first_difference,
    minute,
    source_fires,
)
from ecsjobs.importer.sources import Source
from ecsjobs.importer.state_machines import RUN_TASK, keeps_input, state_target, steps_of, task_states

FIRES = 20
EVENT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_TICK = timedelta(microseconds=1)
_OWN_TAGS = {"job", TRY_TAG, LAUNCH_TAG}  # a step's, to find its tasks: never a source's


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
    result.differences += limit_differences(source, spec)
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
    """The job's next fires against the source's (``source_times``), its end against the source's, and, for a
    schedule in a time zone, every daylight saving change of the next two years."""
    job = spec.job
    timezone = job.timezone or "UTC"
    if source.expression is None:  # a state machine nothing starts on a schedule
        if job.schedule:
            result.differences.append(f"the source runs when started; the job is scheduled {job.schedule}")
        return []
    expression = source.expression
    if job.schedule != expression and not expression.startswith("at("):
        result.notes.append(f"schedule written as {job.schedule!r}, the source's is {expression!r}")
    after = max(now, start_datetime(job) - _TICK)  # a job's start is inclusive
    end = end_datetime(job)
    ours = next_fire_times(job.schedule, timezone, after, FIRES) if job.schedule else []
    ours = [fire for fire in ours if end is None or fire <= end]
    window = source.flexible_window or {}
    if window.get("Mode", "OFF") != "OFF":
        result.differences.append(
            f"the source fires at a random instant up to {window.get('MaximumWindowInMinutes')} min "
            "after each time (FlexibleTimeWindow); the job fires on time"
        )
    try:
        theirs = source_fires(source, now, FIRES)
    except UnknownFires as err:
        result.differences.append(f"fire times: {err}")
        return ours
    if expression.startswith("at("):
        if job.schedule:
            result.differences.append(f"the source runs once ({expression}); the job is scheduled")
        elif theirs:
            result.differences.append(
                f"the source runs once, at {theirs[0].at.isoformat()}; the job runs only when triggered"
            )
        return []
    if (job.schedule or "").startswith("rate("):  # DeltaTriggerTimetable: from the first run on
        result.differences.append(
            f"the job's {job.schedule} counts from when Airflow first schedules it: its instants are not "
            "known in advance"
        )
    elif difference := first_difference([minute(fire) for fire in ours], theirs):
        result.differences.append(f"{difference} (of the next {FIRES})")
    elif job.schedule and source.kind == "schedule":
        changes = dst_differences(source, job.schedule, timezone, now.date())
        result.differences += [f"daylight saving change {change}" for change in changes[:1]]
    _compare_ends(source, job.schedule, timezone, end, result)
    return ours


def _compare_ends(
    source: Source, schedule: str | None, timezone: str, end: datetime | None, result: Comparison
) -> None:
    """Equal ends: the first fire the source no longer makes is the job's first one after its end."""
    if source.end is None and end is None or schedule is None:
        return
    if source.end is None:
        result.differences.append(
            f"the job ends at {end.isoformat() if end else ''}; the source does not end"
        )
        return
    if end is None:
        result.differences.append(
            f"the source fires before {source.end.isoformat()} only; the job has no end"
        )
        return
    theirs = [f.at for f in source_fires(replace(source, end=None), source.end - _TICK, 1)]
    ours = [minute(fire) for fire in next_fire_times(schedule, timezone, end, 1)]
    if ours != theirs:
        result.differences.append(
            f"end: the first fire the job no longer makes is {ours[0].isoformat() if ours else 'none'}, the "
            f"source's {theirs[0].isoformat() if theirs else 'none'}"
        )


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
    steps: dict[str, list[dict[str, Any]]] = {}
    for entry in rendered:  # a matrix job has one per combination, in order
        steps.setdefault(entry["step"], []).append(_essentials(entry["request"]))
    definition = source.definition or {}
    inputs: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for name, state, given in _task_inputs(definition, source.execution_input or {}):
        inputs.setdefault(name, []).append((state, given))
    for name, _state in task_states(definition):
        if name not in inputs:
            result.differences.append(f"state {name}: off the path the job follows (a Choice's Default)")
    step_of = steps_of(list(inputs), list(spec.steps))
    for name, runs in inputs.items():
        step = step_of[name]
        if step not in steps:
            result.differences.append(f"state {name}: no step {step} in the job")
            continue
        if len(runs) != len(steps[step]):
            result.differences.append(
                f"state {name} runs {len(runs)} times a run (its Map's items), step {step} {len(steps[step])}"
            )
            continue
        for index, ((state, given), ours) in enumerate(zip(runs, steps[step], strict=True)):
            unresolved: list[str] = []
            parameters = _with_input(state.get("Parameters", {}), given, unresolved)
            if unresolved:
                result.differences.append(
                    f"state {name}: {', '.join(unresolved)} has no value the source can be shown to send (an "
                    "earlier state's output, or a value Step Functions makes as it runs)"
                )
                break
            sent = _source_request(state_target(parameters, catalog.environment), fire)
            what = f"step {step} request" + (f" (item {index + 1})" if len(runs) > 1 else "")
            _differ(ours, sent, what, result)
    for step in sorted(set(steps) - set(step_of.values())):
        result.differences.append(f"step {step}: not a state of the state machine")


_UNKNOWN: Any = object()  # a value the source's definition alone does not give (an earlier state's output)


def _task_inputs(machine: dict[str, Any], state_input: Any) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """Each ``ecs:runTask`` state on the path from ``StartAt`` (a Choice's Default, a Map's first item) with
    its input, as Step Functions passes input on from state to state."""
    states, name, seen = machine.get("States", {}), machine.get("StartAt"), set()
    while name in states and name not in seen:
        seen.add(name)
        state = states[name]
        own = state_input if state.get("InputPath", "$") == "$" else _UNKNOWN
        if state.get("Type") == "Task" and str(state.get("Resource", "")).startswith(RUN_TASK):
            yield name, state, own
        for branch in state.get("Branches", []):
            yield from _task_inputs(branch, own)
        if processor := state.get("ItemProcessor") or state.get("Iterator"):
            for item_input in _item_inputs(state, own):
                yield from _task_inputs(processor, item_input)
        if state.get("Type") == "Choice":
            name = state.get("Default")
            continue
        state_input = state_input if keeps_input(state) else _UNKNOWN
        name = None if state.get("End") else state.get("Next")


def _item_inputs(state: dict[str, Any], state_input: Any) -> list[Any]:
    """The input a Map's processor gets for each item: the item, or its ``ItemSelector`` of it (one unknown
    input when the items are not known from the definition and the execution input)."""
    items = state.get("Items", state.get("ItemsPath", "$"))
    values = items if isinstance(items, list) else _path_value(items, state_input, _UNKNOWN)
    if not isinstance(values, list) or not values:
        return [_UNKNOWN]
    selector = state.get("ItemSelector") or state.get("Parameters")
    if not selector:
        return values
    inputs = []
    for value in values:
        unresolved: list[str] = []
        selected = _with_input(selector, state_input, unresolved, value)
        inputs.append(_UNKNOWN if unresolved else selected)
    return inputs


def _with_input(value: Any, state_input: Any, unresolved: list[str], item: Any = _UNKNOWN) -> Any:
    """``"Key.$": path`` as ``"Key": <its value>``; a path without a known value (an earlier state's output,
    ``$$.Execution.StartTime``, ``$$.Task.Token``) is kept and listed in ``unresolved``."""
    if isinstance(value, list):
        return [_with_input(entry, state_input, unresolved, item) for entry in value]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, entry in value.items():
        if key.endswith(".$") and isinstance(entry, str):
            resolved = _path_value(entry, state_input, item)
            if resolved is _UNKNOWN:
                unresolved.append(entry)
                result[key] = entry
            else:
                result[key[:-2]] = resolved
        else:
            result[key] = _with_input(entry, state_input, unresolved, item)
    return result


def _path_value(path: Any, state_input: Any, item: Any) -> Any:
    """A JSONPath's value: over the state input (one field deep) or the Map item."""
    if path == "$$.Map.Item.Value":
        return item
    if isinstance(path, str) and path.startswith("$$.Map.Item.Value."):
        field = path.removeprefix("$$.Map.Item.Value.")
        return item[field] if isinstance(item, dict) and field in item else _UNKNOWN
    if path == "$":
        return state_input
    if isinstance(path, str) and path.startswith("$.") and isinstance(state_input, dict):
        return state_input.get(path[2:], _UNKNOWN)
    return _UNKNOWN


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
        {
            "platformVersion": parameters.get("PlatformVersion"),
            "tags": tags_of(parameters.get("Tags") or []),
            "enableExecuteCommand": parameters.get("EnableExecuteCommand"),
            "placementConstraints": parameters.get("PlacementConstraints"),
            "placementStrategy": parameters.get("PlacementStrategy"),
            "group": parameters.get("Group"),
        },
    )


def _essentials(request: dict[str, Any]) -> dict[str, Any]:
    """The fields of a RunTask request a rule or schedule can set, in one comparable shape (without the
    tags a step puts on its task to find it again)."""
    vpc = (request.get("networkConfiguration") or {}).get("awsvpcConfiguration")
    tags = {tag["key"]: tag["value"] for tag in request.get("tags") or [] if tag["key"] not in _OWN_TAGS}
    return _shape(
        request["cluster"],
        request["taskDefinition"],
        _launch(request.get("launchType"), request.get("capacityProviderStrategy")),
        _network(vpc, "subnets", "securityGroups", "assignPublicIp"),
        request.get("overrides") or {},
        request.get("propagateTags"),
        {
            "platformVersion": request.get("platformVersion"),
            "tags": tags,
            "enableExecuteCommand": request.get("enableExecuteCommand"),
            "placementConstraints": request.get("placementConstraints"),
            "placementStrategy": request.get("placementStrategy"),
            "group": request.get("group"),
        },
    )


def _shape(
    cluster: str,
    task_definition: str,
    launch: str,
    network: str | None,
    overrides: dict[str, Any],
    propagate_tags: str | None,
    others: dict[str, Any],
) -> dict[str, Any]:
    """The comparable request: names rather than ARNs, and only the fields that are set."""
    shape = {
        "cluster": resource_name(cluster),
        "taskDefinition": resource_name(task_definition),
        "launch": launch,
        "network": network,
        "containers": _containers(overrides.get("containerOverrides") or []),
        "cpu": overrides.get("cpu") and str(overrides["cpu"]),
        "memory": overrides.get("memory") and str(overrides["memory"]),
        "propagateTags": None if propagate_tags == "NONE" else propagate_tags,
        **others,
    }
    if shape.get("platformVersion") == "LATEST":  # what Fargate runs when none is given
        shape["platformVersion"] = None
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
