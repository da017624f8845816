"""The changes that bring what exists to what the catalog asks for, field by field; only resources with
this environment's marks are updated or deleted."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecsjobs.catalog.loading import Catalog
from ecsjobs.deploy import event_route
from ecsjobs.deploy.monitoring.desired import ALARM_FIELDS, desired_alarms, desired_dashboard, desired_queries
from ecsjobs.deploy.monitoring.live import (
    existing_alarms,
    existing_dashboard,
    existing_queries,
    metric_baselines,
)

log = logging.getLogger(__name__)

MANAGED_BY_TAG, MANAGED_BY = "ecsjobs:managed-by", "ecsjobs"
ENVIRONMENT_TAG, JOB_TAG = "ecsjobs:environment", "ecsjobs:job"

OPERATORS = {"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": ">="}
SYMBOLS = {"create": "+", "update": "~", "delete": "-", "conflict": "!"}  # of a change, as printed


@dataclass(frozen=True)
class Change:
    """One write the sync makes, or (``conflict``) one it refuses to make."""

    action: str  # create | update | delete | conflict
    kind: str  # alarm | dashboard | query
    name: str
    detail: str = ""  # what is created, which fields change, or why it is left alone
    request: dict[str, Any] | None = None  # arguments of the write call (create, update)
    resource_id: str | None = None  # saved query id (update, delete)

    def __str__(self) -> str:
        text = f"{SYMBOLS[self.action]} {self.kind} {self.name}"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class Plan:
    environment: str
    header: str = ""
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.action != "conflict"]

    @property
    def conflicts(self) -> list[Change]:
        return [c for c in self.changes if c.action == "conflict"]

    def summary(self) -> str:
        counts = {a: sum(c.action == a for c in self.changes) for a in ("create", "update", "delete")}
        text = ", ".join(f"{n} to {a}" for a, n in counts.items()) + f", {self.unchanged} unchanged"
        if self.conflicts:
            text += f", {len(self.conflicts)} left alone (not managed by ecsjobs)"
        return text

    def __str__(self) -> str:
        lines = [self.header] if self.header else []
        lines += [f"note: {note}" for note in self.notes] + [str(change) for change in self.changes]
        return "\n".join(lines + [f"Plan for environment {self.environment!r}: {self.summary()}."])


def plan(
    catalog: Catalog,
    cloudwatch: Any,
    logs: Any,
    now: datetime | None = None,
    route: tuple[Any, ...] | None = None,
) -> Plan:
    """Compare the catalog's alarms, dashboard and saved queries (and, with ``task_events`` and the ``route``
    clients SQS, EventBridge and ECS, the events queue and rule) with what exists; read-only."""
    env, env_name = catalog.environment, catalog.environment_name
    baselines, notes = metric_baselines(catalog, cloudwatch, now)
    actions = env.alarm_topic_arn or "none (no alarm_topic_arn)"
    header = f"Environment {env_name!r}: namespace {env.metrics_namespace}, alarm actions {actions}"
    result = Plan(env_name, header, notes=notes)
    _plan_alarms(result, desired_alarms(catalog, baselines), *existing_alarms(cloudwatch, env_name))
    _plan_dashboard(result, catalog, existing_dashboard(cloudwatch, catalog.environment.dashboard_name))
    _plan_queries(result, desired_queries(catalog), existing_queries(logs, env_name))
    if env.task_events and route:
        tags = {MANAGED_BY_TAG: MANAGED_BY, ENVIRONMENT_TAG: env_name}
        for action, kind, request in event_route.plan(env, tags, *route):
            if action == "unchanged":
                result.unchanged += 1
            else:
                detail = f"STOPPED tasks of {env.cluster}" if kind == "rule" else "SQS, with its policy"
                result.changes.append(Change(action, kind, env.task_events.queue, detail, request))
    return result


def _plan_alarms(
    result: Plan, desired: dict[str, dict[str, Any]], managed: dict[str, dict[str, Any]], foreign: set[str]
) -> None:
    env_name = result.environment
    for name, request in desired.items():
        if name in foreign:
            reason = f"exists without the tags {MANAGED_BY_TAG}={MANAGED_BY}, {ENVIRONMENT_TAG}={env_name}"
            result.changes.append(Change("conflict", "alarm", name, f"{reason}; left alone"))
        elif name not in managed:
            result.changes.append(Change("create", "alarm", name, _alarm_summary(request), request))
        elif changed := alarm_differences(request, managed[name]):
            untagged = {k: v for k, v in request.items() if k != "Tags"}  # PutMetricAlarm ignores them then
            result.changes.append(Change("update", "alarm", name, "; ".join(changed), untagged))
        else:
            result.unchanged += 1
    for name in sorted(set(managed) - set(desired)):
        result.changes.append(Change("delete", "alarm", name, "its job or step left the catalog"))


def alarm_differences(desired: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """``Field: old -> new`` (or ``Field changed`` for long texts) for every field the sync sets that
    differs; lists compare as sets."""

    def normal(key: str, value: Any) -> Any:
        if key == "Dimensions":
            return sorted((d["Name"], d["Value"]) for d in value)
        return sorted(value) if isinstance(value, list) else value

    differences = []
    for key, default in ALARM_FIELDS.items():
        want, have = desired.get(key, default), actual.get(key, default)
        if normal(key, want) != normal(key, have):
            old, new = _shown(key, have), _shown(key, want)
            differences.append(f"{key}: {old} -> {new}" if len(old + new) <= 100 else f"{key} changed")
    return differences


def _shown(key: str, value: Any) -> str:
    if key == "Dimensions":
        return ", ".join(f"{d['Name']}={d['Value']}" for d in value) or "none"
    if isinstance(value, list):
        return ", ".join(value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _alarm_summary(request: dict[str, Any]) -> str:
    operator = OPERATORS[request["ComparisonOperator"]]
    metric, statistic, threshold = request["MetricName"], request["Statistic"], request["Threshold"]
    return f"{metric} {statistic} {operator} {threshold:g} in {request['Period']} s"


def _plan_dashboard(result: Plan, catalog: Catalog, actual: dict[str, Any] | None) -> None:
    name, desired = catalog.environment.dashboard_name, desired_dashboard(catalog)
    request = {"DashboardName": name, "DashboardBody": json.dumps(desired, sort_keys=True)}
    widgets = f"{len(desired['widgets'])} widgets ({len(catalog.jobs)} job(s))"
    if actual is None:
        result.changes.append(Change("create", "dashboard", name, widgets, request))
    elif actual != desired:
        before = len(actual.get("widgets", []))
        result.changes.append(Change("update", "dashboard", name, f"{before} -> {widgets}", request))
    else:
        result.unchanged += 1


def _plan_queries(result: Plan, desired: dict[str, dict[str, Any]], actual: list[dict[str, Any]]) -> None:
    by_name: dict[str, dict[str, Any]] = {}
    for query in actual:
        if query["name"] in by_name or query["name"] not in desired:  # a copy, or a job that left
            detail = (
                "a second query with this name" if query["name"] in by_name else "its job left the catalog"
            )
            result.changes.append(
                Change("delete", "query", query["name"], detail, None, query["queryDefinitionId"])
            )
        else:
            by_name[query["name"]] = query
    for name, want in desired.items():
        request = {"name": name, **want}
        have = by_name.get(name)
        if have is None:
            result.changes.append(Change("create", "query", name, ", ".join(want["logGroupNames"]), request))
            continue
        changed = [
            key
            for key in ("queryString", "logGroupNames")
            if (sorted(have.get(key) or []) if key == "logGroupNames" else have.get(key)) != want[key]
        ]
        if changed:
            update = {**request, "queryDefinitionId": have["queryDefinitionId"]}
            result.changes.append(
                Change(
                    "update",
                    "query",
                    name,
                    f"{', '.join(changed)} changed",
                    update,
                    have["queryDefinitionId"],
                )
            )
        else:
            result.unchanged += 1
