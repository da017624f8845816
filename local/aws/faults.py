"""Faults injected into AWS calls through the control API: RunTask capacity failures, throttling, HTTP 500s,
and DescribeTasks not yet knowing a task (``missing``: ECS is eventually consistent right after RunTask).

``rate`` is deterministic: each matching call adds it to a credit and the fault fires whenever the credit
reaches 1, so a rate of 0.5 hits exactly every second call and tests need no retries or tolerances.
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

from local.aws.rules import Facts, Rule, RuleBook, matches, validate_match, validate_times

KINDS = ("failure", "throttle", "http_500", "missing")
FAULT_KEYS = {"action", "kind", "service", "reason", "rate", "times", "match"}
CAPACITY_UNAVAILABLE = (
    "Capacity is unavailable at this time. Please try again later or select a different availability zone."
)
JSON_ERRORS = {"throttle": (400, "ThrottlingException", "Rate exceeded")}
QUERY_ERRORS = {"throttle": (400, "Throttling", "Rate exceeded")}
SERVER_ERROR_CODES = {"ecs": "ServerException"}


class Faults:
    """The fault rules; the newest one that applies to a call decides how that call fails."""

    def __init__(self) -> None:
        self.rules = RuleBook("fault")

    def add(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise ValueError("expected a fault object")
        unknown = set(payload) - FAULT_KEYS
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)}; known: {sorted(FAULT_KEYS)}")
        kind = payload.get("kind")
        if kind not in KINDS:
            raise ValueError(f"'kind' must be one of {list(KINDS)}")
        spec = {
            "service": payload.get("service", "ecs"),
            "action": payload.get("action", "*"),
            "kind": kind,
            "reason": payload.get("reason"),
            "rate": payload.get("rate", 1),
        }
        if kind == "failure" and (spec["service"], spec["action"]) != ("ecs", "RunTask"):
            raise ValueError("a 'failure' fault applies to ecs RunTask only")
        if kind == "missing" and (spec["service"], spec["action"]) != ("ecs", "DescribeTasks"):
            raise ValueError("a 'missing' fault applies to ecs DescribeTasks only")
        if not isinstance(spec["rate"], int | float) or not 0 < spec["rate"] <= 1:
            raise ValueError("'rate' must be a number in (0, 1]")
        match = validate_match(payload.get("match", {}))
        rule = self.rules.add(match, spec, validate_times(payload.get("times")))
        return {"id": rule.id}

    def take(self, service: str, action: str, facts: Facts | None) -> Rule | None:
        """The fault that hits this call, if any; ``facts`` are those of a RunTask request, else None."""

        def hits(rule: Rule) -> bool:
            spec = rule.spec
            if spec["service"] != service or spec["action"] not in ("*", action):
                return False
            if rule.match and (facts is None or not matches(rule.match, facts)):
                return False
            return rule.fires()

        return self.rules.take(hits)


def fault_reply(
    fault: Rule, service: str, json_protocol: bool, facts: Facts | None, params: dict[str, Any] | None = None
) -> tuple[int, str, bytes]:
    """(HTTP status, content type, body) of the faulted answer, shaped as the service's protocol expects;
    ``facts`` are those of the RunTask call that a ``failure`` fault answers, ``params`` the request's."""
    kind, reason = fault.spec["kind"], fault.spec["reason"]
    if kind == "missing":
        failures = [{"arn": arn, "reason": "MISSING"} for arn in (params or {}).get("tasks", [])]
        return 200, "application/x-amz-json-1.1", json.dumps({"tasks": [], "failures": failures}).encode()
    if kind == "failure":
        assert facts is not None, "failure faults apply to RunTask only"
        failure = {"arn": facts.cluster_arn, "reason": reason or CAPACITY_UNAVAILABLE}
        body = {"tasks": [], "failures": [failure]}
        return 200, "application/x-amz-json-1.1", json.dumps(body).encode()
    server_error = (500, SERVER_ERROR_CODES.get(service, "InternalFailure"), "Simulated server error")
    if json_protocol:
        status, code, message = JSON_ERRORS.get(kind, server_error)
        body = {"__type": code, "message": reason or message}
        return status, "application/x-amz-json-1.1", json.dumps(body).encode()
    status, code, message = QUERY_ERRORS.get(kind, server_error)
    xml = (
        f"<ErrorResponse><Error><Type>{'Sender' if status < 500 else 'Receiver'}</Type><Code>{code}</Code>"
        f"<Message>{escape(reason or message)}</Message></Error><RequestId>local</RequestId></ErrorResponse>"
    )
    return status, "text/xml", xml.encode()
