"""What the importer made of one source: its job, its notes (exact, approximated, review), and the values the
source fills in as it invokes its target (AWS's context values)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ecsjobs.importer.sources import Source

Level = Literal["exact", "approximated", "review"]
# EventBridge's $.time of a scheduled event is the fire time, which is a scheduled run's logical date here.
EVENT_TIME = "{{ logical_date.strftime('%Y-%m-%dT%H:%M:%SZ') }}"
SCHEDULED_TIME = "aws.scheduler.scheduled-time"
RUN_ID, TRY_NUMBER = "{{ run_id }}", "{{ ti.try_number }}"
TEMPLATES = (EVENT_TIME, RUN_ID, TRY_NUMBER)  # what the importer writes for a source's context values


@dataclass(frozen=True)
class Note:
    level: Level
    what: str  # the source field, e.g. EcsParameters.Group
    detail: str


@dataclass
class Imported:
    """A source's job (None if skipped), its name, and the notes of the mapping."""

    source: Source
    name: str
    job: dict[str, Any] | None
    notes: list[Note] = field(default_factory=list)
    skipped: str | None = None
    failed: str | None = None  # why the importer could not map it: reported, the other sources go on

    def note(self, level: Level, what: str, detail: str) -> None:
        self.notes.append(Note(level, what, detail))

    @property
    def needs_review(self) -> bool:
        return any(n.level == "review" for n in self.notes)


@dataclass(frozen=True)
class ContextValue:
    """A value the source fills in as it invokes its target: what the job sends for it, how sure that is,
    and what the source sent at a fire time (None: not known before it is sent, e.g. a fresh ID)."""

    job: str
    level: Level
    detail: str
    sent: Callable[[str], str] | None


def context_values(source: Source) -> dict[str, ContextValue]:
    """The placeholders a rule's input transformer (its predefined variables) or a schedule's input (its
    context attributes) may hold, as AWS documents them:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html#eb-transform-input-predefined
    https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
    """
    if source.kind == "schedule":
        return {
            "aws.scheduler.schedule-arn": ContextValue(
                source.arn, "exact", "the schedule's ARN", lambda _time: source.arn
            ),
            SCHEDULED_TIME: ContextValue(
                EVENT_TIME,
                "exact",
                "the scheduled time (UTC, as Scheduler sends it) is the run's logical date",
                lambda time: time,
            ),
            "aws.scheduler.execution-id": ContextValue(
                RUN_ID,
                "review",
                "a new ID for each attempt to invoke the target; the run's ID is one per run and shaped "
                "differently: sent as the run's ID",
                None,
            ),
            "aws.scheduler.attempt-number": ContextValue(
                TRY_NUMBER,
                "review",
                "Scheduler's attempt to deliver (1, then its retries); sent as the step's try number, "
                "which counts Airflow's tries",
                lambda _time: "1",
            ),
        }
    event = "the whole scheduled event has no run equivalent"
    return {
        "aws.events.rule-arn": ContextValue(source.arn, "exact", "the rule's ARN", lambda _time: source.arn),
        "aws.events.rule-name": ContextValue(
            source.name, "exact", "the rule's name", lambda _time: source.name
        ),
        "aws.events.event.ingestion-time": ContextValue(
            EVENT_TIME,
            "review",
            "when EventBridge received the scheduled event, a little after its scheduled time: sent as the "
            "run's logical date, the scheduled time",
            None,
        ),
        "aws.events.event": ContextValue("REVIEW <aws.events.event>", "review", event, None),
        "aws.events.event.json": ContextValue("REVIEW <aws.events.event.json>", "review", event, None),
    }


def used_context(text: str, source: Source) -> dict[str, ContextValue]:
    """The context values ``text`` holds as ``<name>``."""
    return {name: value for name, value in context_values(source).items() if f"<{name}>" in text}


def job_name(source_name: str) -> str:
    """A job (and DAG) id from a rule or schedule name: lower case, ``_`` for anything else."""
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", source_name.lower())).strip("_") or "job"


def matrix_environment(imported: Imported) -> None:
    """A matrix axis reaches each task as an environment variable named after it (the catalog's matrix), which
    the source sent only if a step already sets that variable to the axis's value."""
    job = imported.job or {}
    steps = job.get("steps") or {"run": job}
    for axis in job.get("matrix") or {}:
        variable, value = axis.upper(), f"{{{{ matrix.{axis} }}}}"
        if any((settings or {}).get("environment", {}).get(variable) != value for settings in steps.values()):
            imported.note(
                "review",
                f"matrix.{axis}",
                f"each task also gets the environment variable {variable} (as every matrix axis reaches the "
                "container), which the source did not send",
            )


def pause_for_review(imported: Imported) -> None:
    """A job with something to review is created paused: it should not run before a person looked at it."""
    if imported.job is not None and imported.needs_review and not imported.job.get("paused"):
        imported.job["paused"] = True
        imported.note("approximated", "State", "created paused until its review items are done")
