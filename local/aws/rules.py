"""Rules of the local AWS control API (scenarios and faults): what they match and how they are used up.

The newest matching rule wins; a rule with ``times`` applies that many times and is then dropped, so a test
can say "the next two Spot tasks fail" without knowing in which order its tasks are started.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MATCH_KEYS = frozenset({"family", "started_by", "group", "launch", "env", "cluster"})


@dataclass(frozen=True)
class Facts:
    """What a RunTask request, or a task it started, can be matched on."""

    cluster_name: str
    cluster_arn: str
    family: str | None = None
    started_by: str | None = None
    group: str | None = None
    launch: str | None = None  # capacity provider name if one was used, else the launch type
    env: tuple[dict[str, str], ...] = ()  # environment of each container override

    @classmethod
    def of_run(
        cls,
        cluster_name: str,
        cluster_arn: str,
        family: str,
        started_by: str | None,
        group: str | None,
        launch: str,
        overrides: dict[str, Any] | None,
    ) -> Facts:
        container_overrides = (overrides or {}).get("containerOverrides") or []
        return cls(
            cluster_name=cluster_name,
            cluster_arn=cluster_arn,
            family=family,
            started_by=started_by or "",
            group=group or f"family:{family}",
            launch=launch,
            env=tuple(
                {item["name"]: item.get("value", "") for item in override.get("environment") or []}
                for override in container_overrides
            ),
        )


def matches(match: dict[str, Any], facts: Facts) -> bool:
    """True when every key of ``match`` holds. ``cluster`` may be a name or an ARN; each ``env`` pair may
    come from any container override."""
    for key, wanted in match.items():
        if key == "env":
            if not all(
                any(env.get(name) == str(value) for env in facts.env) for name, value in wanted.items()
            ):
                return False
        elif key == "cluster":
            if wanted not in (facts.cluster_name, facts.cluster_arn):
                return False
        elif getattr(facts, key) != wanted:
            return False
    return True


def validate_match(match: Any) -> dict[str, Any]:
    if not isinstance(match, dict):
        raise ValueError("'match' must be an object")
    unknown = set(match) - MATCH_KEYS
    if unknown:
        raise ValueError(f"unknown match keys {sorted(unknown)}; known: {sorted(MATCH_KEYS)}")
    if "env" in match and not isinstance(match["env"], dict):
        raise ValueError("'match.env' must be an object of NAME: value")
    return match


def validate_times(times: Any) -> int | None:
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
        raise ValueError("'times' must be a positive integer")
    return times


@dataclass
class Rule:
    id: str
    match: dict[str, Any]
    spec: dict[str, Any]  # the scenario or the fault
    times: int | None = None
    used: int = 0
    credit: float = field(default=0.0, repr=False)  # accumulated ``rate`` of a fault, see local.aws.faults

    def fires(self) -> bool:
        """Add the rule's ``rate`` to its credit: True (and one credit spent) whenever it reaches 1."""
        self.credit += self.spec["rate"]
        if self.credit < 1 - 1e-9:
            return False
        self.credit -= 1
        return True

    def to_json(self) -> dict[str, Any]:
        remaining = None if self.times is None else self.times - self.used
        return {"id": self.id, "match": self.match, **self.spec, "times": self.times, "remaining": remaining}


class RuleBook:
    """Thread-safe list of rules; ``take`` finds the newest acceptable rule and spends one use of it."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._ids = itertools.count(1)
        self._rules: list[Rule] = []
        self._lock = threading.Lock()

    def add(self, match: dict[str, Any], spec: dict[str, Any], times: int | None) -> Rule:
        with self._lock:
            rule = Rule(f"{self._prefix}-{next(self._ids)}", match, spec, times)
            self._rules.append(rule)
            return rule

    def take(self, accept: Callable[[Rule], bool]) -> Rule | None:
        with self._lock:
            for rule in reversed(self._rules):
                if accept(rule):
                    rule.used += 1
                    if rule.times is not None and rule.used >= rule.times:
                        self._rules.remove(rule)
                    return rule
        return None

    def to_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            kept = [rule for rule in self._rules if rule.id != rule_id]
            removed = len(kept) != len(self._rules)
            self._rules = kept
            return removed

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
