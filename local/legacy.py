"""The shipped catalog's jobs as they ran before the migration, for ``python -m ecsjobs import`` to read back.

A job with steps was a Step Functions state machine (a ``Task`` state per step, ``Parallel`` where steps ran
side by side) started by an EventBridge rule; a job with a time zone was an EventBridge Scheduler schedule;
every other job an EventBridge rule with an ECS target, one target per matrix combination. Each is derived
from the RunTask requests the job renders: a value that changes with the run's date was the event's time
(``<time>``, ``<aws.scheduler.scheduled-time>``, ``$$.Execution.StartTime``), every other value is sent as
it is. Manual jobs (no schedule) had no source. Usage: ``python -m local.legacy [--endpoint URL]`` seeds the
local AWS, so that the migration runbook (``docs/migrate.md``) can be tried end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
from pydantic import TypeAdapter

from ecsjobs.build.render import render_requests
from ecsjobs.catalog.environment import Environment
from ecsjobs.catalog.loading import Catalog, JobSpec, load_catalog
from ecsjobs.catalog.models import step_order
from ecsjobs.cli import main as cli
from local.settings import LOCAL_AWS_PORT, Ports, connections

ROLE = "arn:aws:iam::123456789012:role/legacy-scheduling"
RUN_TASK_SYNC = "arn:aws:states:::ecs:runTask.sync"
TIME = "\x00time\x00"  # where the source sent its event's time
# Two runs far apart: a value that differs between them depends on the date.
REFERENCE = datetime(2026, 3, 2, 6, tzinfo=UTC)
FAR = REFERENCE + timedelta(days=400, hours=7)


def source_name(job: str, prefix: str = "") -> str:
    """The rule, schedule or state machine a job was: ``data_processor`` was ``data-processor``."""
    return prefix + job.replace("_", "-")


def date_free_requests(spec: JobSpec, catalog: Catalog) -> list[dict[str, Any]]:
    """The rendered requests with each value that depends on the run's date replaced by :data:`TIME`."""
    args = (spec, catalog.environment, catalog.environment_name)
    first, far = render_requests(*args, REFERENCE, {}), render_requests(*args, FAR, {})
    return [{**a, "request": _timed(a["request"], b["request"])} for a, b in zip(first, far, strict=True)]


def _timed(value: Any, other: Any) -> Any:
    if isinstance(value, dict):
        return {key: _timed(item, other.get(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_timed(a, b) for a, b in zip(value, other, strict=True)]
    return value if value == other else TIME


def seed(catalog: Catalog, client: Callable[[str], Any], prefix: str = "") -> list[tuple[str, str]]:
    """Create the sources of every scheduled job; the kind and name of each one created."""
    events, scheduler, sfn = client("events"), client("scheduler"), client("stepfunctions")
    names = []
    for name, spec in sorted(catalog.jobs.items()):
        job = spec.job
        if not job.schedule:
            continue
        source = source_name(name, prefix)
        requests = date_free_requests(spec, catalog)
        zoned = bool(job.timezone and job.timezone != "UTC")
        if len(spec.steps) > 1 or (zoned and len(requests) > 1):  # a schedule has one target
            definition = _state_machine(requests, spec, catalog.environment)
            machine = _create_machine(sfn, source, definition)
            names.append(("state_machine", source))
            start = {"Arn": machine, "RoleArn": ROLE, "Input": "{}"}
            if zoned:
                _create_schedule(scheduler, source, job.schedule, job.timezone, start)
                names.append(("schedule", source))
            else:
                _create_rule(events, source, job.schedule, [{"Id": "start", **start}])
                names.append(("rule", source))
        elif zoned:
            target = _ecs_target(requests[0], catalog.environment, scheduler=True)
            _create_schedule(scheduler, source, job.schedule, job.timezone, target)
            names.append(("schedule", source))
        else:
            targets = [
                {"Id": _target_id(entry), **_ecs_target(entry, catalog.environment)} for entry in requests
            ]
            _create_rule(events, source, job.schedule, targets)
            names.append(("rule", source))
    return names


def _target_id(entry: dict[str, Any]) -> str:
    return "-".join(str(value) for value in (entry.get("matrix") or {}).values()) or "run"


def eventbridge_expression(expression: str) -> str:
    """The schedule as EventBridge writes it: a standard cron ``m h d mon *`` as ``cron(m h d mon ? *)``."""
    if expression.startswith(("cron(", "rate(", "at(")):
        return expression
    minute, hour, day, month, weekday = expression.split()
    if weekday != "*":
        raise ValueError(f"{expression}: only a standard cron without weekdays is translated here")
    minute, hour = (field.replace("*/", "0/") for field in (minute, hour))
    return f"cron({minute} {hour} {day} {month} ? *)"


def _create_rule(events: Any, name: str, expression: str, targets: list[dict[str, Any]]) -> None:
    events.put_rule(Name=name, ScheduleExpression=eventbridge_expression(expression), State="ENABLED")
    events.put_targets(Rule=name, Targets=targets)


def _create_schedule(scheduler: Any, name: str, expression: str, timezone: str, target: dict) -> None:
    scheduler.create_schedule(
        Name=name,
        ScheduleExpression=eventbridge_expression(expression),
        ScheduleExpressionTimezone=timezone,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )


def _create_machine(sfn: Any, name: str, definition: dict[str, Any]) -> str:
    response = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)
    return response["stateMachineArn"]


def _ecs_target(entry: dict[str, Any], env: Environment, scheduler: bool = False) -> dict[str, Any]:
    """An EventBridge (or Scheduler) ECS target sending ``entry``'s request, its time from the event."""
    request = entry["request"]
    vpc = request["networkConfiguration"]["awsvpcConfiguration"]
    parameters: dict[str, Any] = {
        "TaskDefinitionArn": _task_definition(request["taskDefinition"], env),
        "TaskCount": 1,
        "PropagateTags": "TASK_DEFINITION",  # as the catalog's steps do
        "NetworkConfiguration": {
            "awsvpcConfiguration": {
                "Subnets": vpc["subnets"],
                "SecurityGroups": vpc["securityGroups"],
                "AssignPublicIp": vpc["assignPublicIp"],
            }
        },
    }
    if "capacityProviderStrategy" in request:
        parameters["CapacityProviderStrategy"] = request["capacityProviderStrategy"]
    else:
        parameters["LaunchType"] = request.get("launchType", "EC2")
    if "platformVersion" in request:
        parameters["PlatformVersion"] = request["platformVersion"]
    tags = entry["settings"].get("task_tags") or {}
    if tags and scheduler:  # Scheduler's tag shape is not EventBridge's
        parameters["Tags"] = [{key: value} for key, value in tags.items()]
    elif tags:
        parameters["Tags"] = [{"Key": key, "Value": value} for key, value in tags.items()]
    target = {"Arn": _cluster(env), "RoleArn": ROLE, "EcsParameters": parameters}
    text = json.dumps(request.get("overrides") or {})
    if TIME not in json.dumps(request.get("overrides") or {}):
        return {**target, "Input": text}
    if scheduler:
        return {**target, "Input": text.replace(json.dumps(TIME), '"<aws.scheduler.scheduled-time>"')}
    transformer = {
        "InputPathsMap": {"time": "$.time"},
        "InputTemplate": text.replace(json.dumps(TIME), "<time>"),
    }
    return {**target, "InputTransformer": transformer}


def _cluster(env: Environment) -> str:
    if env.cluster.startswith("arn:"):
        return env.cluster
    return f"arn:aws:ecs:{env.region}:{env.account_id}:cluster/{env.cluster}"


def _task_definition(family: str, env: Environment) -> str:
    return f"arn:aws:ecs:{env.region}:{env.account_id}:task-definition/{family}"


def _state_machine(requests: list[dict[str, Any]], spec: JobSpec, env: Environment) -> dict[str, Any]:
    """A ``Task`` state per step, in layers: a layer of several steps is a ``Parallel`` state. A matrix job
    (one step) is a ``Parallel`` state of a ``Task`` per combination."""
    if len(spec.steps) == 1:
        tasks = {_target_id(entry): _task_state(entry, env) for entry in requests}
        layers = [list(tasks)]
    elif spec.job.matrix:
        raise ValueError(f"{spec.name}: a matrix pipeline has no legacy form here")
    else:
        tasks = {entry["step"]: _task_state(entry, env) for entry in requests}
        layers = list(_layers({name: step.depends_on for name, step in spec.steps.items()}))
    states: dict[str, Any] = {}
    for index, layer in enumerate(layers):
        following = {"Next": _layer_name(layers[index + 1])} if index + 1 < len(layers) else {"End": True}
        if len(layer) == 1:
            states[layer[0]] = {**tasks[layer[0]], **following}
        else:
            branches = [{"StartAt": name, "States": {name: {**tasks[name], "End": True}}} for name in layer]
            states[_layer_name(layer)] = {"Type": "Parallel", "Branches": branches, **following}
    return {"StartAt": _layer_name(layers[0]), "States": states}


def _layers(depends_on: dict[str, list[str]]) -> Iterator[list[str]]:
    """Steps grouped so that each group depends on exactly the one before (as the shipped pipelines do)."""
    done: list[str] = []
    order = step_order(depends_on)
    while len(done) < len(order):
        layer = [name for name in order if name not in done and set(depends_on[name]) <= set(done)]
        done += layer
        yield layer


def _layer_name(layer: list[str]) -> str:
    return layer[0] if len(layer) == 1 else "-and-".join(layer)


def _task_state(entry: dict[str, Any], env: Environment) -> dict[str, Any]:
    request = entry["request"]
    vpc = request["networkConfiguration"]["awsvpcConfiguration"]
    parameters: dict[str, Any] = {
        "Cluster": _cluster(env),
        "TaskDefinition": request["taskDefinition"],
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "Subnets": vpc["subnets"],
                "SecurityGroups": vpc["securityGroups"],
                "AssignPublicIp": vpc["assignPublicIp"],
            }
        },
    }
    if "capacityProviderStrategy" in request:
        parameters["CapacityProviderStrategy"] = [
            {"CapacityProvider": item["capacityProvider"], "Weight": item.get("weight", 1)}
            for item in request["capacityProviderStrategy"]
        ]
    else:
        parameters["LaunchType"] = request.get("launchType", "EC2")
    parameters["PropagateTags"] = "TASK_DEFINITION"  # as the catalog's steps do
    overrides = request.get("overrides") or {}
    containers = []
    for container in overrides.get("containerOverrides", []):
        state_container: dict[str, Any] = {"Name": container["name"]}
        if "command" in container:
            if TIME in container["command"]:
                raise ValueError(f"{entry['step']}: a state cannot put the time into one command argument")
            state_container["Command"] = container["command"]
        if container.get("environment"):
            state_container["Environment"] = [_state_variable(item) for item in container["environment"]]
        containers.append(state_container)
    parameters["Overrides"] = {
        "ContainerOverrides": containers,
        **{key.capitalize(): overrides[key] for key in ("cpu", "memory") if key in overrides},
    }
    state: dict[str, Any] = {"Type": "Task", "Resource": RUN_TASK_SYNC, "Parameters": parameters}
    settings = entry["settings"]  # the step's timeout and retries, as the state machine had them
    if settings.get("timeout"):
        state["TimeoutSeconds"] = int(_seconds(settings["timeout"]))
    if settings.get("retries"):
        delay = int(_seconds(settings["retry_delay"])) if settings.get("retry_delay") else 1
        state["Retry"] = [
            {"ErrorEquals": ["States.ALL"], "MaxAttempts": settings["retries"], "IntervalSeconds": delay}
        ]
    return state


def _seconds(duration: str) -> float:
    return TypeAdapter(timedelta).validate_python(duration).total_seconds()


def _state_variable(item: dict[str, str]) -> dict[str, str]:
    if item["value"] == TIME:
        return {"Name": item["name"], "Value.$": "$$.Execution.StartTime"}
    return {"Name": item["name"], "Value": item["value"]}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m local.legacy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default=f"http://127.0.0.1:{LOCAL_AWS_PORT}", help="the local AWS")
    parser.add_argument("--prefix", default="", help="put before every name created")
    parser.add_argument("--import", dest="out", metavar="DIR", help="then import them into DIR, and report")
    args = parser.parse_args()
    catalog = load_catalog(environment="local")
    session = boto3.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name=catalog.environment.region
    )
    created = seed(catalog, lambda kind: session.client(kind, endpoint_url=args.endpoint), args.prefix)
    for kind, name in created:
        print(f"created {kind.replace('_', ' ')} {name}")
    if not args.out:
        return 0
    os.environ.update(connections(Ports(aws=urlsplit(args.endpoint).port or LOCAL_AWS_PORT)))
    command = ["--env", "local", "import", "--from", "aws", "--prefix", args.prefix, "--out", args.out]
    return cli.main(command)


if __name__ == "__main__":
    sys.exit(main())
