"""From a rule or schedule to a job: what maps exactly, what only approximately, what needs a person.

Nothing is dropped silently: every source field either becomes a job key or a note in the report (and, for
what needs review, a comment in the job file).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from ecsjobs.catalog.environment import Environment
from ecsjobs.importer.imported import Imported, job_name, matrix_environment, pause_for_review
from ecsjobs.importer.run_task import ecs_settings, lambda_settings, target_step
from ecsjobs.importer.schedule_keys import schedule_keys
from ecsjobs.importer.sources import Source, SourceError
from ecsjobs.importer.state_machines import map_state_machine

_KINDS = {
    "rule": "EventBridge rule",
    "schedule": "EventBridge Scheduler schedule",
    "state_machine": "Step Functions state machine",
}


def map_source(source: Source, env: Environment, lambdas: dict[str, dict[str, str]], today: date) -> Imported:
    imported = Imported(source, job_name(source.name), None)
    if source.unreadable:
        raise SourceError(source.unreadable)
    if source.managed_by:
        imported.skipped = f"managed by {source.managed_by}: that service owns it"
        return imported
    if source.starts:
        imported.skipped = f"starts the state machine {source.starts}: imported as its job's schedule"
        return imported
    if source.end is not None and source.end <= datetime.combine(today, time(), UTC):
        imported.skipped = f"its EndDate {source.end.isoformat()} has passed: it invokes nothing any more"
        return imported
    if source.kind == "state_machine":
        return _state_machine_job(source, env, imported, today)
    if source.expression is None:
        imported.skipped = (
            "reacts to events, not to a schedule" if source.event_pattern else "has no schedule"
        )
        return imported
    ecs = [t for t in source.targets if ":ecs:" in t.get("Arn", "") and "EcsParameters" in t]
    functions = [t for t in source.targets if ":lambda:" in t.get("Arn", "")]
    if not ecs and not functions:
        kinds = sorted(
            {t.get("Arn", "?").split(":")[2] for t in source.targets if t.get("Arn", "").count(":") > 2}
        )
        imported.skipped = f"runs no ECS task and no Lambda ({', '.join(kinds) or 'no targets'})"
        return imported

    job: dict[str, Any] = {"description": _description(source)}
    job.update(schedule_keys(source, imported, today))
    steps = [(target_step(t), ecs_settings(t, env, imported)) for t in ecs]
    steps += [(target_step(t), lambda_settings(t, lambdas, imported)) for t in functions]
    for _, settings in steps:  # the catalog's default retries would rerun what the source ran once
        settings["retries"] = 0
    imported.note(
        "exact",
        "retries",
        "the source started each task once (its RetryPolicy retries the RunTask call, not a task that failed:"
        " https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html): retries 0",
    )
    fan_outs = [settings.pop("matrix") for _, settings in steps if "matrix" in settings]
    if fan_outs and len(steps) == 1:
        job["matrix"] = fan_outs[0]
    elif fan_outs:
        imported.note(
            "review", "EcsParameters.TaskCount", "several targets with TaskCount > 1: run once each"
        )
    if len(steps) == 1:
        job.update(steps[0][1])
    else:  # one rule, several targets: they ran side by side, as independent steps do
        job["steps"] = dict(steps)
        imported.note("exact", "Targets", f"{len(steps)} targets become {len(steps)} steps run side by side")
    imported.job = job
    matrix_environment(imported)
    pause_for_review(imported)
    return imported


def _state_machine_job(source: Source, env: Environment, imported: Imported, today: date) -> Imported:
    job: dict[str, Any] = {"description": _description(source)}
    if source.starter:
        job.update(schedule_keys(source, imported, today))
    else:
        job["start_date"] = today
        imported.note("review", "schedule", "no rule or schedule starts it: the job runs when triggered")
    job.update(map_state_machine(source, env, imported))
    imported.job = job
    matrix_environment(imported)
    pause_for_review(imported)
    return imported


def _description(source: Source) -> str:
    if source.kind == "state_machine":
        starter = source.starter
        started = f", started by the {_KINDS[starter.kind]} {starter.name}" if starter else ""
        return f"Imported from the Step Functions state machine {source.name}{started}."
    return f"Imported from the {_KINDS[source.kind]} {source.name}."
