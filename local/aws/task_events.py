"""ECS "Task State Change" events, sent to the local EventBridge as simulated tasks change state, with faults.

ECS puts every change of a task's ``lastStatus`` on the account's default event bus: source ``aws.ecs``,
detail-type ``ECS Task State Change``, ``detail`` in the shape of a DescribeTasks task (dates as ISO 8601
strings, no tags) with a ``version`` that grows with each change. moto's EventBridge then delivers the event
through the bus's rules to their targets, SQS queues included. The simulator's ticker calls
:meth:`TaskEvents.changed`; faults added through the control API (``POST /_local/event-faults``) drop,
duplicate, delay or reorder the events of matching tasks, as EventBridge's at-least-once, unordered delivery
may.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local.aws.moto_surface import JSONSerializer, XFormedAttributePicker, events_backends, get_service_model
from local.aws.rules import Facts, RuleBook, matches, validate_match, validate_times

DETAIL_TYPE = "ECS Task State Change"
SOURCE = "aws.ecs"
# A task's lastStatus values in the order ECS reports them; a task's ``version`` is its position here.
STATUSES = ("PROVISIONING", "PENDING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED")
KINDS = ("drop", "duplicate", "delay", "reorder")
FAULT_KEYS = {"kind", "status", "seconds", "rate", "times", "match"}
MAX_SENT = 100_000
REORDER_HOLD = 5.0  # seconds a reordered event waits for a later one before it is sent anyway


@functools.cache
def install() -> None:
    """Once per process: moto's EventBridge compiles the 8 JSONPaths of its default input template with a new
    yacc parser for each target of each matching rule, about 20 ms per rule and event; with a few dozen rules
    (one per environment and test queue) that delayed each event by a second, and by seconds under load.
    Compiled paths are immutable: cache them."""
    import jsonpath_ng.ext

    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)


def version_of(status: str) -> int:
    return STATUSES.index(status) + 1


@dataclass(frozen=True)
class TaskEvent:
    account: str
    region: str
    task_arn: str
    status: str
    entry: dict[str, Any]  # a PutEvents entry


class TaskEvents:
    """Builds each state change's event, applies the event faults and puts what is left on the bus."""

    def __init__(self) -> None:
        self.faults = RuleBook("event-fault")
        self._sent: deque[dict[str, Any]] = deque(maxlen=MAX_SENT)  # what reached the bus, in order
        self._delayed: list[tuple[float, int, TaskEvent]] = []  # a heap by due time
        self._held: list[tuple[float, TaskEvent]] = []  # reordered: sent after the next event
        self._order = itertools.count()
        self._lock = threading.Lock()
        model = get_service_model("ecs").operation_model("DescribeTasks")
        self._serializer = JSONSerializer(operation_model=model, value_picker=XFormedAttributePicker())

    def add_fault(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise ValueError("expected an event fault object")
        unknown = set(payload) - FAULT_KEYS
        if unknown:
            raise ValueError(f"unknown event fault keys {sorted(unknown)}; known: {sorted(FAULT_KEYS)}")
        spec = {
            "kind": payload.get("kind"),
            "status": payload.get("status", "STOPPED"),
            "seconds": payload.get("seconds", 0 if payload.get("kind") == "duplicate" else REORDER_HOLD),
            "rate": payload.get("rate", 1),
        }
        if spec["kind"] not in KINDS:
            raise ValueError(f"'kind' must be one of {list(KINDS)}")
        if spec["status"] not in (*STATUSES, "*"):
            raise ValueError(f"'status' must be one of {[*STATUSES, '*']}")
        if not isinstance(spec["seconds"], int | float) or spec["seconds"] < 0:
            raise ValueError("'seconds' must be a number >= 0")
        if not isinstance(spec["rate"], int | float) or not 0 < spec["rate"] <= 1:
            raise ValueError("'rate' must be a number in (0, 1]")
        match = validate_match(payload.get("match", {}))
        return {"id": self.faults.add(match, spec, validate_times(payload.get("times"))).id}

    def reset(self) -> None:
        self.faults.clear()
        with self._lock:
            self._sent.clear()
            self._delayed.clear()
            self._held.clear()

    def changed(self, task: Any, status: str, at: float, facts: Facts) -> None:
        """Task ``task`` reached ``status`` at ``at`` (the simulator's clock is frozen there)."""
        bus = events_backends[task.account_id][task.region_name].event_buses.get("default")
        if bus is None or not bus.rules:
            return  # nobody listens: skip building the event
        event = TaskEvent(task.account_id, task.region_name, task.task_arn, status, self._entry(task, at))
        fault = self._fault(status, facts)
        kind = fault.spec["kind"] if fault else None
        if kind == "drop":
            return
        with self._lock:
            if kind == "delay":
                heapq.heappush(self._delayed, (at + fault.spec["seconds"], next(self._order), event))
                return
            if kind == "reorder":
                self._held.append((at + fault.spec["seconds"], event))
                return
            held, self._held = self._held, []
        self._put(event)
        for _, earlier in held:
            self._put(earlier)
        if kind == "duplicate":
            with self._lock:
                heapq.heappush(self._delayed, (at + fault.spec["seconds"], next(self._order), event))

    def tick(self, now: float) -> None:
        """Send the delayed events that are due, and reordered ones that waited long enough."""
        with self._lock:
            due = []
            while self._delayed and self._delayed[0][0] <= now:
                due.append(heapq.heappop(self._delayed)[2])
            due += [event for until, event in self._held if until <= now]
            self._held = [(until, event) for until, event in self._held if until > now]
        for event in due:
            self._put(event)

    def _fault(self, status: str, facts: Facts) -> Any:
        def hits(rule: Any) -> bool:
            if rule.spec["status"] not in ("*", status) or not matches(rule.match, facts):
                return False
            return rule.fires()

        return self.faults.take(hits)

    def _entry(self, task: Any, at: float) -> dict[str, Any]:
        """The PutEvents entry: the task as DescribeTasks shows it now, in the event's date format."""
        body = json.loads(self._serializer.serialize({"tasks": [task], "failures": []})["body"])
        detail = {key: _iso(key, value) for key, value in body["tasks"][0].items() if key != "tags"}
        detail["containers"] = [
            {key: _iso(key, value) for key, value in container.items()} for container in detail["containers"]
        ]
        detail["updatedAt"] = _iso("updatedAt", at)
        return {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(detail),
            "Resources": [task.task_arn],
            "Time": at,
        }

    def _put(self, event: TaskEvent) -> None:
        events_backends[event.account][event.region].put_events([event.entry])
        detail = json.loads(event.entry["Detail"])
        with self._lock:
            sent = {"taskArn": event.task_arn, "lastStatus": event.status, "version": detail["version"]}
            self._sent.append({**sent, "t": time.time()})

    def sent_json(self) -> list[dict[str, Any]]:
        """The events put on the bus, oldest first: task ARN, lastStatus, version and when."""
        with self._lock:
            return list(self._sent)


def _iso(key: str, value: Any) -> Any:
    """ECS events carry dates as ISO 8601 strings where DescribeTasks' JSON has epoch seconds."""
    if key.endswith("At") and isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value
