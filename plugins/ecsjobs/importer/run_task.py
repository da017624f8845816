"""A target's RunTask parameters (or an orchestration Lambda's input) as a step's catalog settings: kept,
approximated or flagged, never dropped."""

from __future__ import annotations

import json
import re
from typing import Any

from ecsjobs.catalog.environment import Environment
from ecsjobs.ecs import resource_name
from ecsjobs.importer.imported import EVENT_TIME, TEMPLATES, Imported, Note, used_context
from ecsjobs.importer.sources import Source

_LAUNCH_TYPES = {"FARGATE": "fargate", "EC2": "ec2"}
_IGNORED_TARGET_KEYS = {"Id", "Arn", "RoleArn", "EcsParameters", "Input", "InputTransformer"}


def target_step(target: dict[str, Any]) -> str:
    """The step a target of a rule with several targets becomes: named by its ``Id``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(target.get("Id", "run")))


def ecs_settings(target: dict[str, Any], env: Environment, imported: Imported) -> dict[str, Any]:
    parameters = target["EcsParameters"]
    settings: dict[str, Any] = {}
    cluster = resource_name(target["Arn"])
    if cluster != resource_name(env.cluster):
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
    return resource_name(arn)


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
    if any(template in value for template in TEMPLATES):
        return value
    return "{% raw %}" + value + "{% endraw %}" if ("{{" in value or "{%" in value) else value


_LAMBDA_TASK_DEFINITION = ("taskDefinition", "taskDef", "task_definition", "TaskDefinition")
_LAMBDA_COUNT = ("count", "taskCount", "TaskCount")


def lambda_settings(
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
