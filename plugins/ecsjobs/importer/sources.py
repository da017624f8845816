"""What the importer reads: EventBridge rules with their targets, and EventBridge Scheduler schedules.

From an account (boto3, read-only List/Describe/Get calls) or from the JSON the AWS CLI prints, for accounts
the importer may not call:

- ``aws events list-rules > rules.json``
- ``aws events list-targets-by-rule --rule NAME > NAME.targets.json`` (the rule's name is the file's)
- ``aws scheduler get-schedule --name NAME > NAME.schedule.json``
- ``aws lambda get-function-configuration --function-name F > F.lambda.json`` (a Lambda target's variables)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ecsjobs.errors import EcsJobsError


class SourceError(EcsJobsError, ValueError):
    """A source file the importer cannot read: names the file (and line) and what is wrong."""


@dataclass(frozen=True)
class Source:
    """One scheduled thing that runs an ECS task (or a Lambda that does), as the importer maps it."""

    kind: Literal["rule", "schedule"]
    name: str
    arn: str
    expression: str | None
    targets: tuple[dict[str, Any], ...]
    enabled: bool = True
    timezone: str | None = None  # Scheduler's ScheduleExpressionTimezone
    start: datetime | None = None  # Scheduler's StartDate
    end: datetime | None = None  # Scheduler's EndDate
    flexible_window: dict[str, Any] | None = None
    group: str = "default"  # Scheduler's schedule group
    managed_by: str | None = None  # a rule another AWS service created and owns
    event_pattern: bool = False  # a rule that reacts to events, not to a schedule


@dataclass
class Sources:
    """Everything read, and the Lambda functions' environment variables by function name or ARN."""

    items: list[Source] = field(default_factory=list)
    lambdas: dict[str, dict[str, str]] = field(default_factory=dict)


def from_aws(client: Callable[[str], Any], prefix: str | None = None) -> Sources:
    """Rules (on the default bus) and schedules (every group) whose name starts with ``prefix``; ``client``
    gives a boto3 client of a service."""
    events, scheduler = client("events"), client("scheduler")
    found = Sources()
    for rule in _rules(events, prefix):
        targets = [
            t for page in _pages(events, "list_targets_by_rule", Rule=rule["Name"]) for t in page["Targets"]
        ]
        found.items.append(_rule(rule, targets))
    listed = _pages(scheduler, "list_schedules", **({"NamePrefix": prefix} if prefix else {}))
    for summary in (s for page in listed for s in page["Schedules"]):
        schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=summary.get("GroupName", "default"))
        found.items.append(_schedule(schedule))
    functions = {t["Arn"] for s in found.items for t in s.targets if ":lambda:" in t.get("Arn", "")}
    if functions:
        functions_client = client("lambda")
        for arn in functions:
            config = functions_client.get_function_configuration(FunctionName=arn)
            found.lambdas[arn] = config.get("Environment", {}).get("Variables", {})
    return found


def from_files(paths: Iterable[Path]) -> Sources:
    """The AWS CLI's JSON: ``list-rules`` output, ``<rule>.targets.json``, ``get-schedule`` output and
    ``get-function-configuration`` output, told apart by their keys."""
    rules: list[dict[str, Any]] = []
    targets: dict[str, list[dict[str, Any]]] = {}
    found = Sources()
    for path in _files(paths):
        document = _load(path)
        if "Rules" in document:
            rules += document["Rules"]
        elif "Targets" in document:
            targets[path.name.removesuffix(".json").removesuffix(".targets")] = document["Targets"]
        elif "ScheduleExpression" in document and "Target" in document:
            found.items.append(_schedule(document))
        elif "FunctionArn" in document:
            variables = document.get("Environment", {}).get("Variables", {})
            found.lambdas[document["FunctionArn"]] = found.lambdas[document["FunctionName"]] = variables
        elif "definition" in document and "stateMachineArn" in document:
            raise SourceError(f"{path}: Step Functions state machines are not imported yet")
        else:
            raise SourceError(
                f"{path}: not the output of aws events list-rules, list-targets-by-rule, aws scheduler "
                "get-schedule or aws lambda get-function-configuration"
            )
    for rule in rules:
        found.items.append(_rule(rule, targets.pop(rule["Name"], [])))
    for name in targets:
        raise SourceError(f"{name}.targets.json: no rule {name!r} in the list-rules output given")
    return found


def _rules(events: Any, prefix: str | None) -> Iterable[dict[str, Any]]:
    for page in _pages(events, "list_rules", **({"NamePrefix": prefix} if prefix else {})):
        yield from page["Rules"]


def _pages(client: Any, operation: str, **kwargs: Any) -> Iterable[dict[str, Any]]:
    """Every page of a List call (events' list calls have no paginator in every botocore)."""
    token_key = "NextToken"
    while True:
        page = getattr(client, operation)(**kwargs)
        yield page
        if not page.get(token_key):
            return
        kwargs[token_key] = page[token_key]


def _rule(rule: dict[str, Any], targets: list[dict[str, Any]]) -> Source:
    return Source(
        kind="rule",
        name=rule["Name"],
        arn=rule.get("Arn", rule["Name"]),
        expression=rule.get("ScheduleExpression"),
        targets=tuple(targets),
        enabled=rule.get("State", "ENABLED") == "ENABLED",
        managed_by=rule.get("ManagedBy"),
        event_pattern=bool(rule.get("EventPattern")),
    )


def _schedule(schedule: dict[str, Any]) -> Source:
    return Source(
        kind="schedule",
        name=schedule["Name"],
        arn=schedule.get("Arn", schedule["Name"]),
        expression=schedule["ScheduleExpression"],
        targets=(schedule["Target"],),
        enabled=schedule.get("State", "ENABLED") == "ENABLED",
        timezone=schedule.get("ScheduleExpressionTimezone"),
        start=_instant(schedule.get("StartDate")),
        end=_instant(schedule.get("EndDate")),
        flexible_window=schedule.get("FlexibleTimeWindow"),
        group=schedule.get("GroupName") or "default",
    )


def _instant(value: Any) -> datetime | None:
    """boto3 gives datetimes, the CLI's JSON ISO strings (or epoch seconds)."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value).astimezone()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _files(paths: Iterable[Path]) -> Iterable[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(path.glob("*.json"))
        elif path.exists():
            yield path
        else:
            raise SourceError(f"{path}: no such file or folder")


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SourceError(f"{path}:{err.lineno}:{err.colno}: not JSON: {err.msg}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SourceError(f"{path}: cannot be read: {err}") from None
    if not isinstance(document, dict):
        raise SourceError(f"{path}:1:1: expected a JSON object as the AWS CLI prints it")
    return document
