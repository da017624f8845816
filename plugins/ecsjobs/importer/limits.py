"""Retries and timeouts: what a job would add to a source that had none.

A rule or schedule starts its task once and lets it run until it stops; a ``Task`` state retries as its
``Retry`` says and stops its task after ``TimeoutSeconds`` (99999999 s without one, taken here as none:
https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html). The importer writes what the source
says, but the catalog's defaults can still add a timeout, which only the loaded job shows.
"""

from __future__ import annotations

from datetime import timedelta

from ecsjobs.catalog.loading import JobSpec
from ecsjobs.importer.asl import steps_of, task_states
from ecsjobs.importer.sources import Source

_STATES_DEFAULT_TIMEOUT = timedelta(seconds=99_999_999)


def source_limits(source: Source, job_steps: list[str]) -> dict[str, tuple[int, timedelta | None]]:
    """A state machine's retries and timeout per step of the job (a rule's or schedule's: 0 and none)."""
    limits: dict[str, tuple[int, timedelta | None]] = {}
    states = dict(task_states(source.definition or {})) if source.kind == "state_machine" else {}
    for name, step in steps_of(list(states), job_steps).items():
        state = states[name]
        retries = int(state["Retry"][0].get("MaxAttempts", 3)) if state.get("Retry") else 0
        timeout = timedelta(seconds=int(state["TimeoutSeconds"])) if state.get("TimeoutSeconds") else None
        limits[step] = (retries, None if timeout == _STATES_DEFAULT_TIMEOUT else timeout)
    return limits


def limit_differences(source: Source, spec: JobSpec) -> list[str]:
    """Where the job's effective retries or timeout (defaults applied) are not the source's."""
    expected, found = source_limits(source, list(spec.steps)), []
    for step, settings in spec.steps.items():
        retries, timeout = expected.get(step, (0, None))
        if (settings.retries or 0) != retries:
            found.append(f"step {step} retries: job {settings.retries or 0}, source {retries}")
        if settings.timeout != timeout:
            theirs = str(timeout) if timeout else "none (it let its task run until it stopped)"
            found.append(f"step {step} timeout: job {settings.timeout or 'none'}, source {theirs}")
    return found
