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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ecsjobs.build.render import render_requests
from ecsjobs.catalog.checks import end_datetime, start_datetime
from ecsjobs.catalog.loading import Catalog, JobSpec
from ecsjobs.catalog.schedules import next_fire_times
from ecsjobs.importer.asl import steps_of, task_states
from ecsjobs.importer.imported import job_name
from ecsjobs.importer.inputs import task_inputs, with_input
from ecsjobs.importer.limits import limit_differences
from ecsjobs.importer.requests import essentials, source_request
from ecsjobs.importer.run_task import target_step
from ecsjobs.importer.source_times import (
    UnknownFires,
    dst_differences,
    first_difference,
    minute,
    source_fires,
)
from ecsjobs.importer.sources import Source
from ecsjobs.importer.state_machines import state_target

FIRES = 20
_TICK = timedelta(microseconds=1)


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
        sent = source_request(target, fire, spec_source)
        _differ(essentials(rendered[0]["request"]), sent, "request", result)
        return
    steps: dict[str, dict[str, Any]] = {}
    for entry in rendered:
        steps.setdefault(entry["step"], essentials(entry["request"]))
    for target in targets:
        step = target_step(target)
        if step not in steps:
            result.differences.append(f"target {target.get('Id')}: no step {step} in the job")
            continue
        _differ(steps[step], source_request(target, fire, spec_source), f"step {step} request", result)
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
        steps.setdefault(entry["step"], []).append(essentials(entry["request"]))
    definition = source.definition or {}
    inputs: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for name, state, given in task_inputs(definition, source.execution_input or {}):
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
            parameters = with_input(state.get("Parameters", {}), given, unresolved)
            if unresolved:
                result.differences.append(
                    f"state {name}: {', '.join(unresolved)} has no value the source can be shown to send (an "
                    "earlier state's output, or a value Step Functions makes as it runs)"
                )
                break
            sent = source_request(state_target(parameters, catalog.environment), fire)
            what = f"step {step} request" + (f" (item {index + 1})" if len(runs) > 1 else "")
            _differ(ours, sent, what, result)
    for step in sorted(set(steps) - set(step_of.values())):
        result.differences.append(f"step {step}: not a state of the state machine")
