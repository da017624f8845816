"""A step's failed try as an Airflow exception, carrying the ``Outcome`` that decided it rather than only a
formatted message: callbacks and tests read the outcome, Airflow reads the class (``AirflowFailException``:
no retry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from ecsjobs.errors import EcsJobsError

if TYPE_CHECKING:
    from ecsjobs.decisions.outcome import Outcome
    from ecsjobs.decisions.retries import Decision


class StepFailed(EcsJobsError, AirflowException):
    """A step's try failed with ``outcome``; Airflow retries it."""

    def __init__(self, message: str, outcome: Outcome):
        super().__init__(message)
        self.outcome = outcome

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (str(self), self.outcome)


class StepFailedFinally(StepFailed, AirflowFailException):
    """A step's try failed with ``outcome`` and no retry is left for it: Airflow fails the step."""


def failure(outcome: Outcome, decision: Decision, lines: list[str]) -> StepFailed:
    """The exception that fails a try: ``StepFailedFinally`` when ``decision`` retries no more; the message
    has the outcome, the container's last log lines and why it is retried or not."""
    message = outcome.describe() + ("\nLast log lines:\n" + "\n".join(lines) if lines else "")
    cls = StepFailed if decision.retry else StepFailedFinally
    return cls(f"{message}\n({decision.why})", outcome)
