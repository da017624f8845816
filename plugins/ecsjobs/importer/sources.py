"""What the importer reads: EventBridge rules with their targets, EventBridge Scheduler schedules, and Step
Functions state machines that run ECS tasks (with the rule or schedule that starts each).

From an account (boto3, read-only List/Describe/Get calls) or from the JSON the AWS CLI prints, for accounts
the importer may not call:

- ``aws events list-rules > rules.json`` (or ``aws events describe-rule --name NAME > NAME.rule.json``)
- ``aws events list-targets-by-rule --rule NAME > NAME.targets.json`` (the rule's name is the file's)
- ``aws scheduler get-schedule --name NAME > NAME.schedule.json``
- ``aws lambda get-function-configuration --function-name F > F.lambda.json`` (a Lambda target's variables)
- ``aws stepfunctions describe-state-machine --state-machine-arn ARN > NAME.state-machine.json``
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ecsjobs.errors import EcsJobsError

RUN_TASK = "arn:aws:states:::ecs:runTask"


class SourceError(EcsJobsError, ValueError):
    """A source file the importer cannot read: names the file (and line) and what is wrong."""


@dataclass(frozen=True)
class Source:
    """One scheduled thing that runs an ECS task (or a Lambda that does), as the importer maps it."""

    kind: Literal["rule", "schedule", "state_machine"]
    name: str
    arn: str
    expression: str | None
    targets: tuple[dict[str, Any], ...]
    enabled: bool = True
    timezone: str | None = None  # Scheduler's ScheduleExpressionTimezone
    start: datetime | None = None  # Scheduler's StartDate
    end: datetime | None = None  # Scheduler's EndDate
    created: datetime | None = None  # Scheduler's CreationDate
    flexible_window: dict[str, Any] | None = None
    group: str = "default"  # Scheduler's schedule group
    managed_by: str | None = None  # a rule another AWS service created and owns
    event_pattern: bool = False  # a rule that reacts to events, not to a schedule
    definition: dict[str, Any] | None = None  # a state machine's Amazon States Language
    execution_input: dict[str, Any] | None = None  # what its rule or schedule starts it with
    starter: Source | None = None  # a state machine: the rule or schedule that starts it
    starts: str | None = None  # a rule or schedule: the state machine it starts (imported with it)
    unreadable: str | None = None  # why the source cannot be mapped: reported, the others go on


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
    states = client("stepfunctions")
    listed = _pages(states, "list_state_machines")
    for summary in (m for page in listed for m in page["stateMachines"]):
        if prefix and not summary["name"].startswith(prefix):
            continue
        machine = states.describe_state_machine(stateMachineArn=summary["stateMachineArn"])
        if RUN_TASK in machine["definition"]:
            found.items.append(_state_machine(machine, "aws"))
    _link(found)
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
        elif ":rule/" in str(document.get("Arn", "")) and "Name" in document:  # describe-rule's output
            rules.append(document)
        elif "Targets" in document:
            targets[path.name.removesuffix(".json").removesuffix(".targets")] = document["Targets"]
        elif "ScheduleExpression" in document and "Target" in document:
            found.items.append(_schedule(document))
        elif "FunctionArn" in document:
            variables = document.get("Environment", {}).get("Variables", {})
            found.lambdas[document["FunctionArn"]] = found.lambdas[document["FunctionName"]] = variables
        elif "definition" in document and "stateMachineArn" in document:
            found.items.append(_state_machine(document, str(path)))
        else:
            raise SourceError(
                f"{path}: not the output of aws events list-rules, describe-rule, list-targets-by-rule, "
                "aws scheduler get-schedule, aws lambda get-function-configuration or stepfunctions "
                "describe-state-machine"
            )
    for rule in rules:
        found.items.append(_rule(rule, targets.pop(rule["Name"], [])))
    for name in targets:
        raise SourceError(f"{name}.targets.json: no rule {name!r} in the list-rules output given")
    _link(found)
    return found


def _state_machine(machine: dict[str, Any], origin: str) -> Source:
    """A definition that is not JSON (an export cut short) is that source's problem, not the import's."""
    unreadable = None
    try:
        definition = json.loads(machine["definition"])
    except json.JSONDecodeError as err:
        definition = {}
        unreadable = (
            f"{origin}: its definition is not JSON: {err.msg} at line {err.lineno} column {err.colno}"
        )
    return Source(
        kind="state_machine",
        name=machine["name"],
        arn=machine["stateMachineArn"],
        expression=None,
        targets=(),
        definition=definition,
        unreadable=unreadable,
    )


def _link(found: Sources) -> None:
    """A state machine gets the schedule (and execution input) of the rule or schedule that starts it."""
    machines = {s.arn: i for i, s in enumerate(found.items) if s.kind == "state_machine"}
    for index, source in enumerate(found.items):
        started = [t for t in source.targets if t.get("Arn") in machines]
        if source.kind == "state_machine" or not started:
            continue
        target = started[0]
        machine = found.items[machines[target["Arn"]]]
        try:
            execution_input = json.loads(target.get("Input") or "{}")
        except json.JSONDecodeError:
            execution_input = {}
        found.items[machines[target["Arn"]]] = replace(
            machine,
            expression=source.expression,
            enabled=source.enabled,
            timezone=source.timezone,
            start=source.start,
            end=source.end,
            flexible_window=source.flexible_window,
            execution_input=execution_input if isinstance(execution_input, dict) else {},
            starter=source,
        )
        found.items[index] = replace(source, starts=machine.name)


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
        created=_instant(schedule.get("CreationDate")),
        flexible_window=schedule.get("FlexibleTimeWindow"),
        group=schedule.get("GroupName") or "default",
    )


def _instant(value: Any) -> datetime | None:
    """boto3 gives datetimes, the CLI's JSON ISO strings (or epoch seconds); AWS's dates are UTC."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if value is not None and not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if value is None:
        return None
    instant: datetime = value
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant


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
