"""How an ECS run ended: the one place that knows ECS stop codes and reason strings.

A stopped task (one element of DescribeTasks' ``tasks``), RunTask ``failures`` or a task ECS no longer
describes becomes an :class:`Outcome`, whose class decides retries and alerts. :data:`RULES` is the table and
its order is the precedence: the first row that matches decides. Why ECS stopped the task outranks what its
containers did, so a Spot task whose app exits 0 on SIGTERM is no success; only essential containers count, so
a log router exiting 1 fails nothing. The provider's ``_check_success_task`` gets both wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ecsjobs.ecs import EcsContainer, EcsTask, TaskStatus

if TYPE_CHECKING:
    from ecsjobs.catalog.models import RetryPolicy


class OutcomeClass(StrEnum):
    """How a run ended; the failure classes are the names of the catalog's ``retry_policy`` fields."""

    SUCCEEDED = "succeeded"
    APPLICATION_FAILURE = "application_failure"
    OUT_OF_MEMORY = "out_of_memory"
    INFRASTRUCTURE_LOSS = "infrastructure_loss"
    FAILED_TO_START = "failed_to_start"
    NO_CAPACITY = "no_capacity"
    STOPPED_EXTERNALLY = "stopped_externally"
    TIMED_OUT = "timed_out"
    MISSING = "missing"
    REJECTED = "rejected"
    NO_RESULT = "no_result"


DEFAULT_RETRIES: dict[OutcomeClass, int] = {
    # The infrastructure failed the run: the next try is likely to pass.
    OutcomeClass.INFRASTRUCTURE_LOSS: 3,
    OutcomeClass.NO_CAPACITY: 3,
    # Fewer: a network blip passes on retry, a wrong image tag or secret ARN never does.
    OutcomeClass.FAILED_TO_START: 2,
    # The same code on the same data fails the same way, or a person decided; MISSING may have succeeded.
    OutcomeClass.APPLICATION_FAILURE: 0,
    OutcomeClass.OUT_OF_MEMORY: 0,
    OutcomeClass.STOPPED_EXTERNALLY: 0,
    OutcomeClass.TIMED_OUT: 0,
    OutcomeClass.MISSING: 0,
    # ECS refused the request itself (a missing task definition, an invalid parameter, overrides over the size
    # limit, access denied): the same request is refused again. Not in the catalog's retry_policy.
    OutcomeClass.REJECTED: 0,
    # Airflow failed the try before its ECS task had a result (a lost worker, an error of this project's):
    # Airflow's own retries apply, as for any task.
    OutcomeClass.NO_RESULT: 0,
}

# StopTask reasons this project writes. A UserInitiated stop is timed_out only if its reason starts with the
# timeout prefix; any other stop, this project's kills included, is stopped_externally.
STOP_REASON_PREFIX = "Stopped by Airflow (ecsjobs)"
TIMEOUT_STOP_REASON_PREFIX = f"{STOP_REASON_PREFIX}: timed out"
STOP_REASON_MAX_LENGTH = 255  # the StopTask API's limit on ``reason``

ESSENTIAL_CONTAINER_EXITED = "EssentialContainerExited"
TASK_FAILED_TO_START = "TaskFailedToStart"
USER_INITIATED = "UserInitiated"
INFRASTRUCTURE_STOP_CODES = frozenset({"SpotInterruption", "TerminationNotice", "InfrastructureHealth"})
HOST_GONE = re.compile(r"Host EC2 \(instance [^)]+\) (?:stopped|terminated)\.")
START_ERROR = re.compile(
    r"\b(?:CannotPullContainerError|ResourceInitializationError|CannotStartContainerError"
    r"|CannotCreateContainerError|CannotCreateVolumeError|ContainerRuntimeTimeoutError|DockerTimeoutError)\b"
)
OUT_OF_MEMORY_ERROR = "OutOfMemoryError"
# SIGKILL and SIGTERM: what ECS sends the other containers once one essential container has exited.
KILLED_EXIT_CODES = frozenset({137, 143})
# RunTask failures meaning "nowhere to place the task right now", from Fargate and from EC2 placement.
PLACEMENT_FAILURE = re.compile(r"Capacity is unavailable|RESOURCE:|AGENT$|ATTRIBUTE$")


def timeout_stop_reason(timeout: timedelta) -> str:
    """The StopTask reason for a run stopped for taking longer than ``timeout``."""
    return f"{TIMEOUT_STOP_REASON_PREFIX} after {timeout}"


def kill_stop_reason(detail: str) -> str:
    """The StopTask reason for a run this project stops on request (task killed, marked failed)."""
    return f"{STOP_REASON_PREFIX}: killed: {detail}"[:STOP_REASON_MAX_LENGTH]


@dataclass(frozen=True)
class Outcome:
    """How one run ended, JSON-safe through ``to_dict`` so it can travel in XCom and trigger events.

    :param cls: the outcome class.
    :param task_arn: the ECS task, or None when RunTask started none.
    :param exit_code: exit code of the deciding container (the essential one that failed, else the main one).
    :param container: name of the deciding container; None without a task.
    :param stop_code: the task's ``stopCode``.
    :param reason: ``stoppedReason``, the deciding container's ``reason`` or the RunTask failure reasons.
    """

    cls: OutcomeClass
    task_arn: str | None
    exit_code: int | None
    container: str | None
    stop_code: str | None
    reason: str

    @property
    def succeeded(self) -> bool:
        return self.cls is OutcomeClass.SUCCEEDED

    def describe(self) -> str:
        """One line for errors and alerts: class, deciding container and exit code, stop code and reason."""
        if self.cls is OutcomeClass.REJECTED:
            return f"rejected: {self.reason}"
        if self.container is None:
            subject = f"task {self.task_arn}" if self.task_arn else "RunTask started no task"
        elif self.exit_code is None:
            subject = f"container {self.container!r} has no exit code"
        else:
            subject = f"container {self.container!r} exited with code {self.exit_code}"
        cause = ": ".join(part for part in (self.stop_code, self.reason) if part)
        return f"{self.cls.value.replace('_', ' ')}: {subject}" + (f" ({cause})" if cause else "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cls": self.cls.value}


Task = EcsTask
Container = EcsContainer


@dataclass(frozen=True)
class Rule:
    """A row of :data:`RULES`, with one test.

    ``task`` judges the task as a whole (the main container is reported); ``container`` judges each essential
    container, the main one first, and the first that matches is the deciding container.
    """

    cls: OutcomeClass
    when: str
    task: Callable[[Task], bool] | None = None
    container: Callable[[Container, Task], bool] | None = None


def _reasons(container: Container, task: Task) -> str:
    return f"{container.get('reason') or ''} {task.get('stoppedReason') or ''}"


RULES: tuple[Rule, ...] = (
    # 1. Why ECS stopped the task, whatever the exit codes (0 included).
    Rule(
        OutcomeClass.INFRASTRUCTURE_LOSS,
        "stopCode SpotInterruption, TerminationNotice or InfrastructureHealth",
        task=lambda t: t.get("stopCode") in INFRASTRUCTURE_STOP_CODES,
    ),
    Rule(
        OutcomeClass.INFRASTRUCTURE_LOSS,
        "stoppedReason 'Host EC2 (instance i-...) stopped.' or '... terminated.', any stopCode",
        task=lambda t: bool(HOST_GONE.match(t.get("stoppedReason") or "")),
    ),
    Rule(
        OutcomeClass.FAILED_TO_START,
        "stopCode TaskFailedToStart",
        task=lambda t: t.get("stopCode") == TASK_FAILED_TO_START,
    ),
    Rule(
        OutcomeClass.TIMED_OUT,
        "stopCode UserInitiated, stoppedReason starts with this project's timeout prefix",
        task=lambda t: (
            t.get("stopCode") == USER_INITIATED
            and (t.get("stoppedReason") or "").startswith(TIMEOUT_STOP_REASON_PREFIX)
        ),
    ),
    Rule(
        OutcomeClass.STOPPED_EXTERNALLY,
        "any other stopCode but EssentialContainerExited: UserInitiated (a person, another tool, this "
        "project's kill), ServiceSchedulerInitiated, codes ECS adds later",
        task=lambda t: t.get("stopCode") not in (None, ESSENTIAL_CONTAINER_EXITED),
    ),
    # 2. Otherwise (EssentialContainerExited or no stopCode) the essential containers decide.
    Rule(
        OutcomeClass.FAILED_TO_START,
        "an essential container has no exit code and a start error as its reason or stoppedReason",
        container=lambda c, t: c.get("exitCode") is None and bool(START_ERROR.search(_reasons(c, t))),
    ),
    Rule(
        OutcomeClass.OUT_OF_MEMORY,
        "an essential container exited 137 with OutOfMemoryError in its reason or stoppedReason",
        container=lambda c, t: c.get("exitCode") == 137 and OUT_OF_MEMORY_ERROR in _reasons(c, t),
    ),
    Rule(
        OutcomeClass.APPLICATION_FAILURE,
        "an essential container exited non-zero, not 137/143",
        container=lambda c, t: c.get("exitCode") not in (None, 0, *KILLED_EXIT_CODES),
    ),
    Rule(
        OutcomeClass.APPLICATION_FAILURE,
        "an essential container exited 137 or 143 (killed): ranked after the row above because ECS kills "
        "the other containers once one exits",
        container=lambda c, t: c.get("exitCode") in KILLED_EXIT_CODES,
    ),
    Rule(
        OutcomeClass.APPLICATION_FAILURE,
        "an essential container has no exit code: nothing shows it succeeded, and retrying blindly could "
        "run the job twice",
        container=lambda c, t: c.get("exitCode") is None,
    ),
    # 3. The rows above took every non-zero or missing exit code.
    Rule(OutcomeClass.SUCCEEDED, "every essential container exited 0", task=lambda t: True),
)


def judge_task(
    task: Task, essential: Collection[str] | None = None, main_container: str | None = None
) -> Outcome:
    """Classify a STOPPED task by the first row of :data:`RULES` that matches.

    :param task: one element of DescribeTasks' ``tasks``, as boto3 returns it.
    :param essential: names of the task definition's essential containers (DescribeTasks does not say
        which are; ``ecsjobs.execution.taskdefs`` looks them up). None: every container decides.
    :param main_container: the job's own container: it decides among equals and is reported when no
        container failed.
    """
    if task.get("lastStatus") != TaskStatus.STOPPED:
        raise ValueError(f"ECS task {task.get('taskArn')} is {task.get('lastStatus')}, not STOPPED yet")
    containers = _essential_containers(task, essential, main_container)
    rule, deciding = next(
        (rule, container) for rule in RULES if (container := _deciding(rule, task, containers)) is not None
    )
    reason = task.get("stoppedReason") if rule.task else deciding.get("reason") or task.get("stoppedReason")
    return Outcome(
        cls=rule.cls,
        task_arn=task.get("taskArn"),
        exit_code=deciding.get("exitCode"),
        container=deciding["name"],
        stop_code=task.get("stopCode"),
        reason=reason or "",
    )


def judge_run_task_failures(failures: Sequence[Mapping[str, Any]]) -> Outcome:
    """Classify RunTask's ``failures`` (RunTask placed no task).

    no_capacity when every failure is a placement one (Fargate capacity, ``RESOURCE:*``, ``AGENT``,
    ``ATTRIBUTE``); anything else (``MISSING``, ``INACTIVE``, reasons ECS adds later) is failed_to_start.
    """
    if not failures:
        raise ValueError("RunTask reported no failures")
    placement = all(PLACEMENT_FAILURE.match(failure.get("reason") or "") for failure in failures)
    reason = "; ".join(
        ": ".join(part for part in (failure.get("reason"), failure.get("detail")) if part)
        for failure in failures
    )
    return _without_containers(
        OutcomeClass.NO_CAPACITY if placement else OutcomeClass.FAILED_TO_START, None, reason
    )


def judge_rejected(reason: str) -> Outcome:
    """The outcome of a request that could not be sent (a template that does not render, overrides over the
    size limit) or that ECS refused: no task exists."""
    return _without_containers(OutcomeClass.REJECTED, None, reason)


def judge_missing(task_arn: str) -> Outcome:
    """The outcome of a task DescribeTasks answers ``MISSING`` for: it aged out, its end is unknown."""
    reason = "MISSING: ECS no longer describes the task; stopped tasks age out after about an hour"
    return _without_containers(OutcomeClass.MISSING, task_arn, reason)


def _without_containers(cls: OutcomeClass, task_arn: str | None, reason: str) -> Outcome:
    return Outcome(cls=cls, task_arn=task_arn, exit_code=None, container=None, stop_code=None, reason=reason)


def allowed_retries(outcome: OutcomeClass, policy: RetryPolicy | Mapping[str, int] | None = None) -> int:
    """Retries for an outcome class: the step's ``retry_policy`` value, else :data:`DEFAULT_RETRIES`. A
    rejected request is never retried, whatever a policy says: the same request is refused again."""
    if outcome is OutcomeClass.REJECTED:
        return 0
    if isinstance(policy, Mapping):
        configured = policy.get(outcome.value)
    else:
        configured = getattr(policy, outcome.value, None)
    return DEFAULT_RETRIES.get(outcome, 0) if configured is None else configured


def _essential_containers(task: Task, essential: Collection[str] | None, main: str | None) -> list[Container]:
    """The deciding candidates in task order, the main container first; an unknown name is a config error."""
    present = [container["name"] for container in task.get("containers", [])]
    wanted = set(essential) if essential is not None else set(present)
    if not wanted:
        raise ValueError(f"ECS task {task.get('taskArn')}: no essential container to judge it by")
    if unknown := wanted.difference(present):
        raise ValueError(
            f"ECS task {task.get('taskArn')} has no container {sorted(unknown)}; it has {present}"
        )
    candidates = [container for container in task["containers"] if container["name"] in wanted]
    return sorted(candidates, key=lambda container: container["name"] != main)


def _deciding(rule: Rule, task: Task, containers: list[Container]) -> Container | None:
    """The container a matching row reports (for a task-level row the main one), None if it does not match."""
    if rule.task is not None:
        return containers[0] if rule.task(task) else None
    matches = rule.container
    assert matches is not None  # a row matches either the task or a container
    return next((container for container in containers if matches(container, task)), None)
