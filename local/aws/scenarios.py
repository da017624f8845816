"""Scenarios of simulated ECS tasks and the timeline (``Plan``) each one turns into.

A scenario says how long each phase of a task lasts and how it ends: exit codes, stop code, reasons and
the log lines of its essential containers. Every field is optional; ``resolve_scenario`` fills in the rest.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

FAILED_TO_START = "TaskFailedToStart"
USER_INITIATED = "UserInitiated"
STOPPED_REASONS = {
    "EssentialContainerExited": "Essential container in task exited",
    FAILED_TO_START: "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
    "SpotInterruption": "Your Spot Task was interrupted.",
    "TerminationNotice": "Task stopped due to termination notice",
    "InfrastructureHealth": "Host EC2 (instance i-0abc) terminated.",
    USER_INITIATED: "Task stopped by user",
}
STOPPING_PHASES = ("DEACTIVATING", "STOPPING", "DEPROVISIONING")
SIGKILLED = 137
SECONDS = ("provisioning", "pending", "duration", "stopping")
# field -> (type of the value, type of its items or values for lists and dicts)
FIELDS: dict[str, tuple[type | tuple[type, ...], type | None]] = {
    **dict.fromkeys(SECONDS, ((int, float), None)),
    "exit_code": (int, None),
    "exit_codes": (dict, int),
    "stop_code": (str, None),
    "stopped_reason": (str, None),
    "container_reasons": (dict, str),
    "log_lines": (list, str),
    "summary": (dict, None),
}
# What a task does when no rule matches: a short, successful job that logs a little and a summary.
DEFAULT_SCENARIO: dict[str, Any] = {
    "log_lines": ["Starting batch job", "Processing records"],
    "summary": {"records_processed": 100, "errors": 0},
}


def validate_scenario(scenario: Any) -> dict[str, Any]:
    if not isinstance(scenario, dict):
        raise ValueError("'scenario' must be an object")
    for key, value in scenario.items():
        if key not in FIELDS:
            raise ValueError(f"unknown scenario field {key!r}; known: {sorted(FIELDS)}")
        kind, item_kind = FIELDS[key]
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
        if (
            not isinstance(value, kind)
            or isinstance(value, bool)
            or (item_kind and not all(isinstance(item, item_kind) for item in items))
        ):
            raise ValueError(f"scenario field {key!r} has the wrong type")
        if key in SECONDS and value < 0:
            raise ValueError(f"scenario field {key!r} must not be negative")
    return scenario


def resolve_scenario(scenario: dict[str, Any], default_duration: float) -> dict[str, Any]:
    """Every field filled in, including the stopped reason that goes with the stop code."""
    resolved = {
        "provisioning": 0.3,
        "pending": 0.3,
        "duration": default_duration,
        "stopping": 0.6,
        "exit_code": 0,
        "exit_codes": {},
        "stop_code": "EssentialContainerExited",
        "container_reasons": {},
        "log_lines": [],
        "summary": None,
        **scenario,
    }
    resolved.setdefault("stopped_reason", STOPPED_REASONS.get(resolved["stop_code"], resolved["stop_code"]))
    return resolved


@dataclass(frozen=True)
class Plan:
    """A task's timeline in epoch seconds; replaced as a whole (atomically) when the task is stopped."""

    created: float
    provisioned: float  # network attached, image pull starts
    pulled: float | None  # image pull done; None if it never happened
    started: float | None  # containers running; None if they never ran
    ended: float  # containers exited, start failed or stop requested: the task begins stopping
    stopped: float
    stop_code: str
    stopped_reason: str
    exit_codes: dict[str, int]  # per container, only for containers that ran
    container_reasons: dict[str, str]

    @classmethod
    def build(cls, scenario: dict[str, Any], created: float, essential: dict[str, bool]) -> Plan:
        """The timeline of a task whose containers are ``essential`` (name -> is it essential)."""
        provisioned = created + scenario["provisioning"]
        run_start = provisioned + scenario["pending"]
        reasons = dict(scenario["container_reasons"])
        if scenario["stop_code"] == FAILED_TO_START:
            return cls(
                created=created,
                provisioned=provisioned,
                pulled=None,
                started=None,
                ended=run_start,
                stopped=run_start + scenario["stopping"],
                stop_code=FAILED_TO_START,
                stopped_reason=scenario["stopped_reason"],
                exit_codes={},
                container_reasons={name: reasons.get(name, scenario["stopped_reason"]) for name in essential},
            )
        ended = run_start + scenario["duration"]
        exit_codes = {
            name: scenario["exit_code"] if is_essential else 0 for name, is_essential in essential.items()
        }
        return cls(
            created=created,
            provisioned=provisioned,
            pulled=run_start,
            started=run_start,
            ended=ended,
            stopped=ended + scenario["stopping"],
            stop_code=scenario["stop_code"],
            stopped_reason=scenario["stopped_reason"],
            exit_codes={**exit_codes, **scenario["exit_codes"]},
            container_reasons=reasons,
        )

    def stopped_by_user(self, at: float, reason: str | None, stopping: float) -> Plan:
        """StopTask: running containers are killed (137), ones that never started get no exit code."""
        if at >= self.ended:
            return self
        ran = self.started is not None and self.started <= at
        return dataclasses.replace(
            self,
            pulled=self.pulled if self.pulled is not None and self.pulled <= at else None,
            started=self.started if ran else None,
            ended=at,
            stopped=at + stopping,
            stop_code=USER_INITIATED,
            stopped_reason=reason or STOPPED_REASONS[USER_INITIATED],
            exit_codes=dict.fromkeys(self.exit_codes, SIGKILLED) if ran else {},
            container_reasons={},
        )

    def _starts(self) -> list[tuple[float, str]]:
        """When each lastStatus begins, in order; a status of length 0 is never taken on."""
        third = (self.stopped - self.ended) / 3
        starts = [(self.created, "PROVISIONING"), (self.provisioned, "PENDING")]
        if self.started is not None:
            starts.append((self.started, "RUNNING"))
        starts += [(self.ended + i * third, phase) for i, phase in enumerate(STOPPING_PHASES)]
        starts.append((self.stopped, "STOPPED"))
        ends = [at for at, _ in starts[1:]] + [math.inf]
        return [(at, status) for (at, status), end in zip(starts, ends, strict=True) if at < end]

    def status(self, t: float) -> str:
        return next((status for at, status in reversed(self._starts()) if t >= at), "PROVISIONING")

    def changes(self, after: float, until: float) -> list[tuple[str, float]]:
        """The ``(lastStatus, since)`` the task took on in ``(after, until]``, in order: each state is
        reported however late it is asked for, as ECS sends an event for each."""
        return [(status, at) for at, status in self._starts() if after < at <= until]

    def container_status(self, t: float) -> str:
        if t >= self.ended:
            return "STOPPED"
        return "RUNNING" if self.started is not None and t >= self.started else "PENDING"
