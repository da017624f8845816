"""From a rule or schedule to a job: what maps exactly, what only approximately, what needs a person.

Nothing is dropped silently: every source field either becomes a job key or a note in the report (and, for
what needs review, a comment in the job file).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ecsjobs.importer.source_times import dst_differences, rate_as_cron, unknown_phase
from ecsjobs.importer.sources import Source, SourceError
from ecsjobs.models import Environment
from ecsjobs.schedules import next_fire_times

Level = Literal["exact", "approximated", "review"]
# EventBridge's $.time of a scheduled event is the fire time, which is a scheduled run's logical date here.
EVENT_TIME = "{{ logical_date.strftime('%Y-%m-%dT%H:%M:%SZ') }}"
SCHEDULED_TIME = "aws.scheduler.scheduled-time"
_KINDS = {
    "rule": "EventBridge rule",
    "schedule": "EventBridge Scheduler schedule",
    "state_machine": "Step Functions state machine",
}
_LAUNCH_TYPES = {"FARGATE": "fargate", "EC2": "ec2"}
_IGNORED_TARGET_KEYS = {"Id", "Arn", "RoleArn", "EcsParameters", "Input", "InputTransformer"}
RUN_ID, TRY_NUMBER = "{{ run_id }}", "{{ ti.try_number }}"
_TEMPLATES = (EVENT_TIME, RUN_ID, TRY_NUMBER)  # what the importer writes for a source's context values


@dataclass(frozen=True)
class Note:
    level: Level
    what: str  # the source field, e.g. EcsParameters.Group
    detail: str


@dataclass
class Imported:
    """A source's job (None if skipped), its name, and the notes of the mapping."""

    source: Source
    name: str
    job: dict[str, Any] | None
    notes: list[Note] = field(default_factory=list)
    skipped: str | None = None
    failed: str | None = None  # why the importer could not map it: reported, the other sources go on

    def note(self, level: Level, what: str, detail: str) -> None:
        self.notes.append(Note(level, what, detail))

    @property
    def needs_review(self) -> bool:
        return any(n.level == "review" for n in self.notes)


@dataclass(frozen=True)
class ContextValue:
    """A value the source fills in as it invokes its target: what the job sends for it, how sure that is,
    and what the source sent at a fire time (None: not known before it is sent, e.g. a fresh ID)."""

    job: str
    level: Level
    detail: str
    sent: Callable[[str], str] | None


def context_values(source: Source) -> dict[str, ContextValue]:
    """The placeholders a rule's input transformer (its predefined variables) or a schedule's input (its
    context attributes) may hold, as AWS documents them:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html#eb-transform-input-predefined
    https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
    """
    if source.kind == "schedule":
        return {
            "aws.scheduler.schedule-arn": ContextValue(
                source.arn, "exact", "the schedule's ARN", lambda _time: source.arn
            ),
            SCHEDULED_TIME: ContextValue(
                EVENT_TIME,
                "exact",
                "the scheduled time (UTC, as Scheduler sends it) is the run's logical date",
                lambda time: time,
            ),
            "aws.scheduler.execution-id": ContextValue(
                RUN_ID,
                "review",
                "a new ID for each attempt to invoke the target; the run's ID is one per run and shaped "
                "differently: sent as the run's ID",
                None,
            ),
            "aws.scheduler.attempt-number": ContextValue(
                TRY_NUMBER,
                "review",
                "Scheduler's attempt to deliver (1, then its retries); sent as the step's try number, "
                "which counts Airflow's tries",
                lambda _time: "1",
            ),
        }
    event = "the whole scheduled event has no run equivalent"
    return {
        "aws.events.rule-arn": ContextValue(source.arn, "exact", "the rule's ARN", lambda _time: source.arn),
        "aws.events.rule-name": ContextValue(
            source.name, "exact", "the rule's name", lambda _time: source.name
        ),
        "aws.events.event.ingestion-time": ContextValue(
            EVENT_TIME,
            "review",
            "when EventBridge received the scheduled event, a little after its scheduled time: sent as the "
            "run's logical date, the scheduled time",
            None,
        ),
        "aws.events.event": ContextValue("REVIEW <aws.events.event>", "review", event, None),
        "aws.events.event.json": ContextValue("REVIEW <aws.events.event.json>", "review", event, None),
    }


def used_context(text: str, source: Source) -> dict[str, ContextValue]:
    """The context values ``text`` holds as ``<name>``."""
    return {name: value for name, value in context_values(source).items() if f"<{name}>" in text}


def job_name(source_name: str) -> str:
    """A job (and DAG) id from a rule or schedule name: lower case, ``_`` for anything else."""
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", source_name.lower())).strip("_") or "job"


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
    job.update(_schedule(source, imported, today))
    steps = [(target_step(t), ecs_settings(t, env, imported)) for t in ecs]
    steps += [(target_step(t), _lambda_settings(t, lambdas, imported)) for t in functions]
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
    _matrix_environment(imported)
    pause_for_review(imported)
    return imported


def _matrix_environment(imported: Imported) -> None:
    """A matrix axis reaches each task as an environment variable named after it (the catalog's matrix), which
    the source sent only if a step already sets that variable to the axis's value."""
    job = imported.job or {}
    steps = job.get("steps") or {"run": job}
    for axis in job.get("matrix") or {}:
        variable, value = axis.upper(), f"{{{{ matrix.{axis} }}}}"
        if any((settings or {}).get("environment", {}).get(variable) != value for settings in steps.values()):
            imported.note(
                "review",
                f"matrix.{axis}",
                f"each task also gets the environment variable {variable} (as every matrix axis reaches the "
                "container), which the source did not send",
            )


def pause_for_review(imported: Imported) -> None:
    """A job with something to review is created paused: it should not run before a person looked at it."""
    if imported.job is not None and imported.needs_review and not imported.job.get("paused"):
        imported.job["paused"] = True
        imported.note("approximated", "State", "created paused until its review items are done")


def _state_machine_job(source: Source, env: Environment, imported: Imported, today: date) -> Imported:
    from ecsjobs.importer.state_machines import map_state_machine

    job: dict[str, Any] = {"description": _description(source)}
    if source.starter:
        job.update(_schedule(source, imported, today))
    else:
        job["start_date"] = today
        imported.note("review", "schedule", "no rule or schedule starts it: the job runs when triggered")
    job.update(map_state_machine(source, env, imported))
    imported.job = job
    _matrix_environment(imported)
    pause_for_review(imported)
    return imported


def _description(source: Source) -> str:
    if source.kind == "state_machine":
        starter = source.starter
        started = f", started by the {_KINDS[starter.kind]} {starter.name}" if starter else ""
        return f"Imported from the Step Functions state machine {source.name}{started}."
    return f"Imported from the {_KINDS[source.kind]} {source.name}."


def _schedule(source: Source, imported: Imported, today: date) -> dict[str, Any]:
    """The job's schedule keys, each noted exact only when its fire times are the source's
    (``source_times`` says what the source's are)."""
    keys: dict[str, Any] = {}
    expression = source.expression or ""
    timezone = source.timezone or "UTC"
    if expression.startswith("at("):
        imported.note("review", "ScheduleExpression", f"{expression} runs once: trigger the job by hand then")
    elif expression.startswith("rate("):
        keys["schedule"] = _rate(source, imported)
        if timezone != "UTC":
            imported.note(
                "exact", "ScheduleExpressionTimezone", f"{timezone} does not move a rate (a day is 24 hours)"
            )
    else:
        keys["schedule"] = expression
        imported.note("exact", "ScheduleExpression", expression)
        if timezone != "UTC":
            keys["timezone"] = timezone
            _dst_note(source, expression, timezone, imported, today)
    zone = ZoneInfo(keys.get("timezone", "UTC"))
    start = today
    if source.start is not None:
        start = source.start.astimezone(zone).date()
        _start_note(source, keys.get("schedule"), keys.get("timezone", "UTC"), start, imported, today)
    keys["start_date"] = start
    if source.end is not None:
        last = (source.end - timedelta(seconds=1)).astimezone(UTC)
        keys["end_date"] = last.strftime("%Y-%m-%dT%H:%M:%SZ")
        imported.note(
            "exact",
            "EndDate",
            f"the schedule fires before {source.end.isoformat()}: end_date {keys['end_date']} is its last "
            "instant (Airflow's end_date is inclusive)",
        )
    window = source.flexible_window or {}
    if window.get("Mode", "OFF") != "OFF":
        minutes = window.get("MaximumWindowInMinutes")
        imported.note(
            "review",
            "FlexibleTimeWindow",
            f"fired up to {minutes} min late on purpose; Airflow fires on time",
        )
    if not source.enabled:
        keys["paused"] = True
        imported.note("exact", "State", "DISABLED: the job is created paused")
    return keys


def _rate(source: Source, imported: Imported) -> str:
    """A rate's instants depend on when it started counting: a schedule with a ``StartDate`` becomes the
    ``cron(...)`` of its instants where there is one; otherwise the job keeps the interval, for review."""
    expression = source.expression or ""
    if source.kind == "schedule" and source.start is not None:
        cron = rate_as_cron(expression, source.start)
        if cron is not None:
            imported.note(
                "exact",
                "ScheduleExpression",
                f"{expression} from StartDate {source.start.isoformat()} fires when {cron} does (UTC)",
            )
            return cron
        why = f"it counts from StartDate {source.start.isoformat()}, which no cron(...) can say"
    else:
        why = unknown_phase(source) or ""
    imported.note(
        "review",
        "ScheduleExpression",
        f"{expression}: the same interval, but {why}; Airflow counts from when it first schedules the job. "
        "Write the source's instants as a cron(...) to keep them",
    )
    return expression


def _dst_note(source: Source, expression: str, timezone: str, imported: Imported, today: date) -> None:
    """Scheduler and Airflow treat a local time that a daylight saving change skips or repeats otherwise:
    the changes of the next two years where this schedule's fires differ, or the time zone as exact."""
    differences = dst_differences(source, expression, timezone, today)
    if not differences:
        imported.note("exact", "ScheduleExpressionTimezone", f"{timezone}, daylight saving changes included")
        return
    more = f"; and {len(differences) - 2} more changes" if len(differences) > 2 else ""
    imported.note(
        "review",
        "ScheduleExpressionTimezone",
        f"{timezone}: on daylight saving changes the job fires otherwise: {'; '.join(differences[:2])}{more}",
    )


def _start_note(
    source: Source, schedule: str | None, timezone: str, start: date, imported: Imported, today: date
) -> None:
    """A job starts at midnight of its start date; a source that starts later that day must not be
    preceded by a fire of the job."""
    assert source.start is not None
    midnight = datetime.combine(start, time(), ZoneInfo(timezone))
    first = next_fire_times(schedule, timezone, midnight - timedelta(microseconds=1), 1) if schedule else []
    early = [fire for fire in first if fire < source.start]
    if early and source.start.date() >= today:
        imported.note(
            "review",
            "StartDate",
            f"{source.start.isoformat()}: the job fires at {early[0].isoformat()} on its start date {start}, "
            "before the source began: keep it paused until then",
        )
    else:
        imported.note("exact", "StartDate", f"{source.start.isoformat()} becomes start_date {start}")


def target_step(target: dict[str, Any]) -> str:
    """The step a target of a rule with several targets becomes: named by its ``Id``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(target.get("Id", "run")))


def ecs_settings(target: dict[str, Any], env: Environment, imported: Imported) -> dict[str, Any]:
    parameters = target["EcsParameters"]
    settings: dict[str, Any] = {}
    cluster = target["Arn"].rsplit("/", 1)[-1]
    if cluster != env.cluster.rsplit("/", 1)[-1]:
        imported.note(
            "review", "Arn", f"runs on cluster {cluster}; the environment's cluster is {env.cluster}"
        )
    settings["task_definition"] = _family(parameters["TaskDefinitionArn"])
    settings.update(_launch(parameters, env, imported))
    if not parameters.get("NetworkConfiguration") and settings.get("launch") in ("ec2", "ec2_spot", None):
        imported.note(
            "review",
            "EcsParameters.NetworkConfiguration",
            "none: the task definition's network mode is bridge or host (or awsvpc on the instance's "
            "defaults); the job sends the environment's awsvpc network, which such a task definition refuses",
        )
    network = _network(parameters.get("NetworkConfiguration"), env, imported)
    if network:
        settings["network"] = network
    if parameters.get("PlatformVersion") not in (None, "LATEST"):
        settings["platform_version"] = parameters["PlatformVersion"]
    tags = tags_of(parameters.get("Tags") or [])
    if tags:
        settings["task_tags"] = tags
    count = int(parameters.get("TaskCount") or 1)
    if count > 1:
        settings["matrix"] = {"copy": list(range(1, count + 1))}
        imported.note(
            "approximated", "EcsParameters.TaskCount", f"{count} tasks become a matrix of {count} steps"
        )
    for key in ("Group", "PlacementConstraints", "PlacementStrategy", "EnableExecuteCommand", "ReferenceId"):
        if parameters.get(key):
            imported.note(
                "review", f"EcsParameters.{key}", f"{parameters[key]!r} has no catalog key: not applied"
            )
    if parameters.get("EnableECSManagedTags"):
        imported.note(
            "approximated", "EcsParameters.EnableECSManagedTags", "ECS-managed tags are not requested"
        )
    # EventBridge copies the task definition's tags only when asked to, a step by default (PropagateTags in
    # https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_EcsParameters.html)
    if parameters.get("PropagateTags") != "TASK_DEFINITION":
        settings["propagate_tags"] = False
    settings.update(_overrides(target, imported.source, imported))
    for key in sorted(set(target) - _IGNORED_TARGET_KEYS):
        imported.note(
            "approximated", key, f"EventBridge's delivery setting {target[key]!r}; Airflow's retries apply"
        )
    return settings


def _family(arn: str) -> str:
    """``family:revision`` as the source pinned it (a bare family runs the latest ACTIVE revision)."""
    return arn.rsplit("/", 1)[-1]


def _launch(parameters: dict[str, Any], env: Environment, imported: Imported) -> dict[str, Any]:
    strategy = parameters.get("CapacityProviderStrategy") or []
    providers = [item.get("capacityProvider") for item in strategy]
    if not strategy and "LaunchType" not in parameters:
        # RunTask without either runs the cluster's default capacity provider strategy, which the source does
        # not say: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
        imported.note(
            "review",
            "EcsParameters.LaunchType",
            "neither a launch type nor a capacity provider strategy: ECS used the cluster's default strategy;"
            " set the job's launch to what that strategy is (the catalog's default applies until then)",
        )
        return {}
    if not strategy:
        launch = _LAUNCH_TYPES.get(parameters["LaunchType"])
        if launch is None:
            imported.note(
                "review", "EcsParameters.LaunchType", f"{parameters['LaunchType']} is not supported"
            )
            return {}
        return {"launch": launch}
    known = {"FARGATE": "fargate", "FARGATE_SPOT": "fargate_spot", env.ec2_spot_capacity_provider: "ec2_spot"}
    if env.ec2_capacity_provider:
        known[env.ec2_capacity_provider] = "ec2"
    launches = [known.get(p) for p in providers]
    if None in launches:
        unknown = [p for p, launch in zip(providers, launches, strict=True) if launch is None]
        imported.note(
            "review", "EcsParameters.CapacityProviderStrategy", f"unknown capacity provider {unknown}"
        )
        return {}
    spot = [launch for launch in launches if launch in ("fargate_spot", "ec2_spot")]
    if len(set(launches)) > 1:  # ECS spreads the tasks by weight; a step runs one launch, then falls back
        imported.note(
            "review",
            "EcsParameters.CapacityProviderStrategy",
            f"{providers} by weight becomes {spot[0] if spot else launches[0]}, falling back on demand",
        )
    return {"launch": spot[0] if spot else launches[0]}


def _network(config: dict[str, Any] | None, env: Environment, imported: Imported) -> str | None:
    """The name of the environment's network the target used (None: the default one)."""
    vpc = (config or {}).get("awsvpcConfiguration")
    if not vpc:
        return None
    wanted = (
        set(vpc.get("Subnets", [])),
        set(vpc.get("SecurityGroups", [])),
        vpc.get("AssignPublicIp") == "ENABLED",
    )
    if wanted == (set(env.subnets), set(env.security_groups), env.assign_public_ip):
        return None
    for name, network in env.networks.items():
        candidate = (
            set(network.subnets or env.subnets),
            set(network.security_groups or env.security_groups),
            env.assign_public_ip if network.assign_public_ip is None else network.assign_public_ip,
        )
        if candidate == wanted:
            return name
    imported.note(
        "review",
        "EcsParameters.NetworkConfiguration",
        f"subnets {sorted(wanted[0])}, security groups {sorted(wanted[1])}: add them to the environment's "
        "networks and name that network in the job (the job runs on the default network until then)",
    )
    return None


def tags_of(tags: list[dict[str, Any]]) -> dict[str, str]:
    """Rules give ``[{"Key": k, "Value": v}]``, Scheduler ``[{k: v}]``."""
    result: dict[str, str] = {}
    for tag in tags:
        if set(tag) == {"Key", "Value"}:
            result[tag["Key"]] = tag["Value"]
        else:
            result.update(tag)
    return result


def _overrides(target: dict[str, Any], source: Source, imported: Imported) -> dict[str, Any]:
    """The RunTask overrides the target sent: its ``Input``, or its ``InputTransformer``'s template, with
    the context values the source fills in (``<aws.scheduler.scheduled-time>``, ...) as the run's."""
    if "InputTransformer" in target:
        text = _transformed(target["InputTransformer"], source, imported)
    elif "Input" in target:  # Scheduler puts its context attributes in the input as it sends it
        used = used_context(target["Input"], source)
        text = fill(target["Input"], {name: value.job for name, value in used.items()})
        for name, value in used.items():
            imported.note(value.level, f"Input <{name}>", value.detail)
        for placeholder in sorted(set(re.findall(r"<(aws\.[a-z.-]+)>", text))):
            imported.note("review", "Input", f"<{placeholder}> is not one of the source's: sent as is")
    else:
        imported.note(
            "review", "Input", "no overrides: set the job's container (the task definition's essential one)"
        )
        return {"container": "REVIEW"}
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as err:
        imported.note("review", "Input", f"not JSON ({err.msg}): {text[:200]}")
        return {"container": "REVIEW"}
    settings: dict[str, Any] = {}
    containers = overrides.get("containerOverrides") or []
    if len(containers) > 1:
        names = [c.get("name") for c in containers[1:]]
        imported.note(
            "review", "Input.containerOverrides", f"overrides of {names} not applied: one container per step"
        )
    if containers:
        container = containers[0]
        settings["container"] = container["name"]
        if "command" in container:
            settings["command"] = [_literal(arg) for arg in container["command"]]
        environment = {item["name"]: _literal(item["value"]) for item in container.get("environment", [])}
        if environment:
            settings["environment"] = environment
        for key in ("cpu", "memory", "memoryReservation", "environmentFiles", "resourceRequirements"):
            if key in container:
                imported.note(
                    "review",
                    f"Input.containerOverrides.{key}",
                    f"container-level {container[key]!r} not applied",
                )
        imported.note("exact", "Input.containerOverrides", f"container {container['name']}")
    else:
        imported.note("review", "Input", "no container override: set the job's container")
        settings["container"] = "REVIEW"
    for key in ("cpu", "memory"):
        if key in overrides:
            settings[key] = int(overrides[key])
    for key in sorted(set(overrides) - {"containerOverrides", "cpu", "memory"}):
        imported.note("review", f"Input.{key}", f"{overrides[key]!r} has no catalog key: not applied")
    return settings


def _transformed(transformer: dict[str, Any], source: Source, imported: Imported) -> str:
    """The template with each ``<name>`` of ``$.time`` as the run's date and the rule's predefined variables
    as the run's; other paths need review."""
    used = used_context(transformer["InputTemplate"], source)
    values = {name: value.job for name, value in used.items()}
    for name, value in used.items():
        imported.note(value.level, f"InputTransformer <{name}>", value.detail)
    for name, path in transformer.get("InputPathsMap", {}).items():
        if path == "$.time":
            values[name] = EVENT_TIME
            imported.note("exact", f"InputTransformer.{name}", "the event's time is the run's logical date")
        else:
            values[name] = f"REVIEW {path}"
            imported.note("review", f"InputTransformer.{name}", f"{path} of the event has no run equivalent")
    return fill(transformer["InputTemplate"], values)


def fill(template: str, values: dict[str, str]) -> str:
    """EventBridge's substitution: ``<name>`` inside a JSON string is replaced by the value's text, outside
    one by the value as a JSON string."""
    if not values:
        return template
    placeholder = re.compile("<(" + "|".join(map(re.escape, values)) + ")>")
    out, i, in_string = [], 0, False
    while i < len(template):
        char = template[i]
        if in_string and char == "\\":
            out.append(template[i : i + 2])
            i += 2
            continue
        if char == '"':
            in_string = not in_string
        elif match := placeholder.match(template, i):
            text = json.dumps(values[match[1]])
            out.append(text[1:-1] if in_string else text)
            i = match.end()
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _literal(value: str) -> str:
    """A value the source sent as is, kept as is by Jinja (which renders every catalog value)."""
    if any(template in value for template in _TEMPLATES):
        return value
    return "{% raw %}" + value + "{% endraw %}" if ("{{" in value or "{%" in value) else value


_LAMBDA_TASK_DEFINITION = ("taskDefinition", "taskDef", "task_definition", "TaskDefinition")
_LAMBDA_COUNT = ("count", "taskCount", "TaskCount")


def _lambda_settings(
    target: dict[str, Any], lambdas: dict[str, dict[str, str]], imported: Imported
) -> dict[str, Any]:
    """A rule calling a Lambda that calls RunTask (the seed's orchestration Lambda). What the function ran is
    in its code, so all of it is for review; what the rule's input tells it (a task definition, overrides, a
    count, any other key) is kept, each key a job key or a note, never dropped."""
    function = target["Arn"]
    name = function.split(":")[6] if function.count(":") >= 6 else function
    variables = lambdas.get(function, lambdas.get(name))
    imported.note(
        "review",
        "Arn",
        f"Lambda {name} called RunTask itself: check the task definition and container it ran "
        + ("(its environment variables are copied)" if variables else "(its configuration was not given)"),
    )
    settings: dict[str, Any] = {
        "task_definition": re.sub(r"[^A-Za-z0-9_-]", "-", name),
        "container": "REVIEW",
    }
    if variables:
        settings["environment"] = {k: _literal(v) for k, v in variables.items()}
    if "InputTransformer" in target:
        template = target["InputTransformer"].get("InputTemplate", "")
        imported.note("review", "InputTransformer", f"the Lambda's input template, by hand: {template[:300]}")
    given = _lambda_input(target.get("Input"), imported)
    for key in _LAMBDA_TASK_DEFINITION:
        if isinstance(given.get(key), str):
            settings["task_definition"] = _family(given.pop(key))
            imported.note("review", f"Input.{key}", "the task definition the Lambda was given")
            break
    overrides = given.pop("overrides", None) or {}
    if "containerOverrides" in given:
        overrides = {"containerOverrides": given.pop("containerOverrides")}
    if overrides:
        before = len(imported.notes)
        settings.update(_overrides({"Input": json.dumps(overrides)}, imported.source, imported))
        # what the Lambda was given, not what it sent: nothing of it is exact
        imported.notes[before:] = [Note("review", n.what, n.detail) for n in imported.notes[before:]]
        imported.note("review", "Input.overrides", "the overrides the Lambda was given")
    for key in _LAMBDA_COUNT:
        if isinstance(given.get(key), int) and given[key] > 1:
            count = given.pop(key)
            settings["matrix"] = {"copy": list(range(1, count + 1))}
            imported.note("review", f"Input.{key}", f"{count} tasks, if the Lambda ran that many: a matrix")
            break
    for key, value in given.items():
        imported.note(
            "review", f"Input.{key}", f"{value!r} for the Lambda: its code says what it did with it"
        )
    return settings


def _lambda_input(text: str | None, imported: Imported) -> dict[str, Any]:
    if not text:
        return {}
    try:
        given = json.loads(text)
    except json.JSONDecodeError as err:
        imported.note("review", "Input", f"the Lambda's input is not JSON ({err.msg}): {text[:200]}")
        return {}
    if not isinstance(given, dict):
        imported.note("review", "Input", f"the Lambda's input {given!r}: by hand")
        return {}
    return given
