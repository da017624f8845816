"""The package's exceptions: one base class, so a caller can tell this project's errors from anyone else's.

A step's failure is also an Airflow exception, carrying the ``Outcome`` that decided it rather than only a
formatted message: callbacks and tests read the outcome, Airflow reads the class (``AirflowFailException``:
no retry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from ecsjobs.outcome import Outcome


class EcsJobsError(Exception):
    """Base class of every exception this package raises."""


class StepFailed(EcsJobsError, AirflowException):
    """A step's try failed with ``outcome``; Airflow retries it."""

    def __init__(self, message: str, outcome: Outcome):
        super().__init__(message)
        self.outcome = outcome


class StepFailedFinally(StepFailed, AirflowFailException):
    """A step's try failed with ``outcome`` and no retry is left for it: Airflow fails the step."""
