"""What one try of a step reports once it has a result: the audit record, metrics and alerts read it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ecsjobs.decisions.outcome import Outcome, OutcomeClass
from ecsjobs.ecs import EcsTask, moment

if TYPE_CHECKING:
    from ecsjobs.reporting.cost import Estimate


@dataclass
class StepRun:
    """One try of one step that reached a result (the ECS task stopped, or RunTask started none).

    :param final: no further try follows: the step's result is this try's.
    :param fallback: the try ran on demand because Spot had failed the step before.
    :param records: records processed, from the job's JSON summary line (None when it logged none).
    :param max_tries: the step's own tries less one, without the adoption reserve
    (``ecsjobs.execution.operators``).
    :param adopted_from: the earlier try whose ECS task's result this try took as its own, because Airflow
        had lost that try (``ecsjobs.execution.operators``); None when this try ran its own task.
    :param cost: what the task is estimated to have cost (``ecsjobs.reporting.cost``); None when it is not
    priced.
    """

    environment: str
    job: str
    step: str
    map_index: int
    run_id: str
    logical_date: str | None
    try_number: int
    max_tries: int
    outcome: OutcomeClass | None  # None: still running (the "late" alert)
    container: str | None
    exit_code: int | None
    stop_code: str | None
    reason: str
    task_arn: str | None
    launch: str
    fallback: bool
    duration_seconds: float | None
    records: float | None
    errors: float | None
    final: bool
    adopted_from: int | None = None
    cost: Estimate | None = None
    # Not part of the audit record: what an alert shows besides it, and whether an earlier try that Airflow
    # lost had already reported (and alerted) this result.
    last_lines: list[str] = field(default_factory=list, repr=False)
    reported_before: bool = field(default=False, repr=False)
    log_url: str | None = field(default=None, repr=False)
    logs_console_url: str | None = field(default=None, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.outcome is OutcomeClass.SUCCEEDED

    def record(self) -> dict[str, Any]:
        """The audit record: one flat JSON object (the cost's fields beside the others)."""
        data = asdict(self)
        for name in ("last_lines", "log_url", "logs_console_url", "reported_before", "cost"):
            data.pop(name)
        data["outcome"] = self.outcome.value if self.outcome else None
        data.update(self.cost.fields() if self.cost else {"estimated_cost": None})
        return data

    @classmethod
    def of(cls, context: Any, outcome: Outcome | None, task_arn: str | None, **fields: Any) -> StepRun:
        """Fill in the task instance's identity (job, step without its task group, run, try) and the
        outcome; without one, the try is still running (the "late" alert)."""
        ti, logical_date = context["ti"], context.get("logical_date")
        return cls(
            job=ti.dag_id,
            step=ti.task_id.rsplit(".", 1)[-1],
            map_index=ti.map_index,
            run_id=ti.run_id,
            logical_date=logical_date.isoformat() if logical_date else None,
            try_number=ti.try_number,
            max_tries=ti.max_tries - getattr(context.get("task"), "adoption_reserve", 0),
            outcome=outcome.cls if outcome else None,
            container=outcome.container if outcome else None,
            exit_code=outcome.exit_code if outcome else None,
            stop_code=outcome.stop_code if outcome else None,
            reason=outcome.reason if outcome else "",
            task_arn=outcome.task_arn or task_arn if outcome else task_arn,
            **fields,
        )


def task_duration(task: EcsTask | None) -> float | None:
    """Seconds the task ran (``startedAt`` to ``stoppedAt``); None if it never started."""
    if not task or not task.get("startedAt") or not task.get("stoppedAt"):
        return None
    started, stopped = (moment(task[key]) for key in ("startedAt", "stoppedAt"))
    return round((stopped - started).total_seconds(), 3)


def task_stopped_at(task: EcsTask | None) -> datetime | None:
    """When the task stopped, None if it has not (or is unknown)."""
    return moment(task["stoppedAt"]) if task and task.get("stoppedAt") else None
