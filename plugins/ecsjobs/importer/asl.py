"""The Amazon States Language as the importer reads it: the RunTask states of a definition (nested in
Parallel and Map states too), whether a state passes its input on, and the job step each state becomes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

RUN_TASK = "arn:aws:states:::ecs:runTask"


def keeps_input(state: dict[str, Any]) -> bool:
    """Whether a state's output still holds its input's fields: a result discarded (``ResultPath: null``) or
    put beside them (``"$.result"``), no ``OutputPath``; the Amazon States Language's input and output
    processing: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-input-output-filtering.html"""
    if state.get("OutputPath", "$") != "$":
        return False
    kind = state.get("Type")
    if kind in ("Choice", "Wait", "Succeed", "Fail") or (
        kind == "Pass" and "Result" not in state and "Parameters" not in state
    ):
        return True
    result_path = state.get("ResultPath", "$")
    return result_path is None or (isinstance(result_path, str) and result_path.startswith("$."))


def step_name(state: str) -> str:
    """A state's step: its name with anything a step name cannot hold as ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", state)


def steps_of(states: list[str], job_steps: list[str]) -> dict[str, str]:
    """The job step each ``ecs:runTask`` state became: its own name, or ``run`` when it was the only one
    (:func:`map_state_machine` makes a one-step job of it)."""
    if len(states) == 1 and job_steps == ["run"]:
        return {states[0]: "run"}
    return {state: step_name(state) for state in states}


def task_states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``ecs:runTask`` state, in branches and Map processors too."""
    for name, state in definition.get("States", {}).items():
        if state.get("Type") == "Task" and str(state.get("Resource", "")).startswith(RUN_TASK):
            yield name, state
        for branch in state.get("Branches", []):
            yield from task_states(branch)
        if processor := state.get("ItemProcessor") or state.get("Iterator"):
            yield from task_states(processor)
