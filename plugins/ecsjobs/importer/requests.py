"""The RunTask request a source sends at a fire time, and the shape two requests are compared in: names rather
than ARNs, and only the fields that are set."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ecsjobs.ecs import resource_name
from ecsjobs.execution.history import LAUNCH_TAG, TRY_TAG
from ecsjobs.importer.imported import used_context
from ecsjobs.importer.run_task import fill, tags_of
from ecsjobs.importer.sources import Source

EVENT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_OWN_TAGS = {"job", TRY_TAG, LAUNCH_TAG}  # a step's, to find its tasks: never a source's


def source_request(target: dict[str, Any], fire: datetime, source: Source | None = None) -> dict[str, Any]:
    """What the rule or schedule asked ECS for at ``fire``, in :func:`shape`: its input with the values it
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
    return shape(
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


def essentials(request: dict[str, Any]) -> dict[str, Any]:
    """The fields of a RunTask request a rule or schedule can set, in one comparable shape (without the
    tags a step puts on its task to find it again)."""
    vpc = (request.get("networkConfiguration") or {}).get("awsvpcConfiguration")
    tags = {tag["key"]: tag["value"] for tag in request.get("tags") or [] if tag["key"] not in _OWN_TAGS}
    return shape(
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


def shape(
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
        providers = sorted(
            str(item.get("capacityProvider") or item.get("CapacityProvider")) for item in strategy
        )
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
