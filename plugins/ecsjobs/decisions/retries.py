"""What a try's result leads to: retry or not, Spot or on demand, adopt or run again.

Pure functions of the facts, beside the outcome table (``ecsjobs.decisions.outcome``) and table-tested like
it; the operator gathers the facts (its ECS tasks, Airflow's try numbers) and acts on the answers.

A succeeded ECS task is never started again. Airflow can fail a try whose ECS task succeeded: when a trigger
fires within seconds of its task deferring, the scheduler may read the worker's stale "finished" for a failure
of the resumed try and retry it (apache/airflow#72716, #66374; not fixed in 3.2 nor 3.3). The retry then
*adopts* the succeeded task's result instead of starting another (:func:`plan_try`). To tell such a retry from
a user's clear of a succeeded step (which must run it again), a try reads Airflow's record of the task
instance: a clear raises ``max_tries`` to the try number plus ``retries``, so only tries after the last clear
are adopted (:attr:`Tries.cleared_after`). A failure is adopted the same way when it left no retry: the job is
not run again against its retry policy.

Airflow's ``max_tries`` counts the step's ``retries`` plus ``ADOPTION_RESERVE``: retries that only a try
adopting a lost result may use. A failure never spends them, so that the race on a step's last try still
leaves a try to adopt the result instead of leaving a succeeded step FAILED.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ecsjobs.decisions.outcome import Outcome, OutcomeClass, allowed_retries
from ecsjobs.ecs import EcsTask

if TYPE_CHECKING:
    from ecsjobs.catalog.models import RetryPolicy

# Two: the race is sometimes followed by a second failure, of the retry that collides with the lost try's
# resumed worker (measured in the tier: 1 of 40 task instances).
ADOPTION_RESERVE = 2


@dataclass(frozen=True)
class Tries:
    """Where a task instance stands.

    :param number: this try's number (Airflow's ``try_number``).
    :param max_tries: Airflow's ``max_tries``: the operator's ``retries``, raised by each clear.
    :param retries: the operator's ``retries``: the step's own plus ``ADOPTION_RESERVE``.
    """

    number: int
    max_tries: int
    retries: int

    @property
    def cleared_after(self) -> int:
        """The try after which the task instance was last cleared, 0 if never: a clear sets ``max_tries`` to
        the try number plus ``retries`` (Airflow 3.2 and 3.3); a retry leaves it alone."""
        return max(0, min(self.max_tries - self.retries, self.number - 1))

    def spent(self, try_number: int | None = None) -> bool:
        """Whether the step's own retries are spent after ``try_number`` (default this try)."""
        return (self.number if try_number is None else try_number) > self.max_tries - ADOPTION_RESERVE


@dataclass(frozen=True)
class Decision:
    """Whether a failed try is retried, and why, as the error message says it."""

    retry: bool
    why: str


def decide(
    cls: OutcomeClass, earlier: int, policy: RetryPolicy | Mapping[str, int] | None, tries: Tries
) -> Decision:
    """A failed try of class ``cls``, after ``earlier`` failures of that class since the last clear: retried
    while its class has retries left and the step's are not spent; never into the adoption reserve."""
    budget = allowed_retries(cls, policy)
    if earlier >= budget:
        return Decision(False, f"no retry: {budget} allowed for {cls}")
    if tries.spent():
        return Decision(False, f"no retry: the step's {tries.retries - ADOPTION_RESERVE} retries are spent")
    return Decision(True, f"retry {earlier + 1} of {budget} for {cls}")


def lost_result_was_final(
    cls: OutcomeClass,
    failures: int,
    policy: RetryPolicy | Mapping[str, int] | None,
    try_number: int,
    tries: Tries,
) -> bool:
    """Whether a failure of class ``cls`` in try ``try_number`` (``failures`` of that class since the last
    clear, itself included) left no retry: then Airflow should not have retried it, and the next try takes
    that failure as the step's instead of running the job again against its retry policy."""
    return failures > allowed_retries(cls, policy) or tries.spent(try_number)


def on_demand(spot: bool, fallback_after: int, spot_failures: int) -> bool:
    """Whether a Spot step runs on demand: after ``fallback_after`` Spot failures (0: never)."""
    return spot and bool(fallback_after) and spot_failures >= fallback_after


@dataclass(frozen=True)
class Earlier:
    """A stopped ECS task of an earlier try since the last clear, as a try's plan reads it."""

    task: EcsTask
    try_number: int
    on_demand: bool  # it ran on demand, after Spot had failed the step
    outcome: Outcome


@dataclass(frozen=True)
class Adopt:
    """Take ``earlier``'s result as this try's own instead of starting a task."""

    earlier: Earlier


@dataclass(frozen=True)
class Start:
    """Start this try's own ECS task.

    :param spot_losses: earlier tries whose Spot task was interrupted (they decide the on-demand fallback).
    :param taskless_tries: earlier tries that started no task (RunTask placed none): no-capacity failures.
    """

    spot_losses: int
    taskless_tries: int


def plan_try(
    tries: Tries, earlier: Sequence[Earlier], policy: RetryPolicy | Mapping[str, int] | None
) -> Adopt | Start:
    """What a try with no ECS task of its own running does: adopt the latest success since the last clear,
    or the latest failure when it left no retry (Airflow retried what it should not have), else start."""
    succeeded = [e for e in earlier if e.outcome.succeeded]
    if succeeded:
        return Adopt(succeeded[-1])
    if earlier:
        last = earlier[-1]
        failures = sum(1 for e in earlier if e.outcome.cls == last.outcome.cls)
        if lost_result_was_final(last.outcome.cls, failures, policy, last.try_number, tries):
            return Adopt(last)
    spot_losses = sum(
        1 for e in earlier if not e.on_demand and e.outcome.cls == OutcomeClass.INFRASTRUCTURE_LOSS
    )
    tries_with_a_task = len({e.try_number for e in earlier})
    return Start(spot_losses, tries.number - 1 - tries.cleared_after - tries_with_a_task)
