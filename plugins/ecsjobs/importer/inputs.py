"""What each Task state of a state machine is given, walked as Step Functions passes input from state to
state (InputPath, Parameters, ResultPath, OutputPath; every item of a Map): a value the definition alone
does not give is left unresolved, so the check calls it a difference."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ecsjobs.importer.asl import RUN_TASK, keeps_input

UNKNOWN: Any = object()  # a value the source's definition alone does not give (an earlier state's output)


def task_inputs(machine: dict[str, Any], state_input: Any) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """Each ``ecs:runTask`` state on the path from ``StartAt`` (a Choice's Default, a Map's first item) with
    its input, as Step Functions passes input on from state to state."""
    states, name, seen = machine.get("States", {}), machine.get("StartAt"), set()
    while name in states and name not in seen:
        seen.add(name)
        state = states[name]
        own = state_input if state.get("InputPath", "$") == "$" else UNKNOWN
        if state.get("Type") == "Task" and str(state.get("Resource", "")).startswith(RUN_TASK):
            yield str(name), state, own
        for branch in state.get("Branches", []):
            yield from task_inputs(branch, own)
        if processor := state.get("ItemProcessor") or state.get("Iterator"):
            for item_input in _item_inputs(state, own):
                yield from task_inputs(processor, item_input)
        if state.get("Type") == "Choice":
            name = state.get("Default")
            continue
        state_input = state_input if keeps_input(state) else UNKNOWN
        name = None if state.get("End") else state.get("Next")


def _item_inputs(state: dict[str, Any], state_input: Any) -> list[Any]:
    """The input a Map's processor gets for each item: the item, or its ``ItemSelector`` of it (one unknown
    input when the items are not known from the definition and the execution input)."""
    items = state.get("Items", state.get("ItemsPath", "$"))
    values = items if isinstance(items, list) else _path_value(items, state_input, UNKNOWN)
    if not isinstance(values, list) or not values:
        return [UNKNOWN]
    selector = state.get("ItemSelector") or state.get("Parameters")
    if not selector:
        return values
    inputs = []
    for value in values:
        unresolved: list[str] = []
        selected = with_input(selector, state_input, unresolved, value)
        inputs.append(UNKNOWN if unresolved else selected)
    return inputs


def with_input(value: Any, state_input: Any, unresolved: list[str], item: Any = UNKNOWN) -> Any:
    """``"Key.$": path`` as ``"Key": <its value>``; a path without a known value (an earlier state's output,
    ``$$.Execution.StartTime``, ``$$.Task.Token``) is kept and listed in ``unresolved``."""
    if isinstance(value, list):
        return [with_input(entry, state_input, unresolved, item) for entry in value]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, entry in value.items():
        if key.endswith(".$") and isinstance(entry, str):
            resolved = _path_value(entry, state_input, item)
            if resolved is UNKNOWN:
                unresolved.append(entry)
                result[key] = entry
            else:
                result[key[:-2]] = resolved
        else:
            result[key] = with_input(entry, state_input, unresolved, item)
    return result


def _path_value(path: Any, state_input: Any, item: Any) -> Any:
    """A JSONPath's value: over the state input (one field deep) or the Map item."""
    if path == "$$.Map.Item.Value":
        return item
    if isinstance(path, str) and path.startswith("$$.Map.Item.Value."):
        field = path.removeprefix("$$.Map.Item.Value.")
        return item[field] if isinstance(item, dict) and field in item else UNKNOWN
    if path == "$":
        return state_input
    if isinstance(path, str) and path.startswith("$.") and isinstance(state_input, dict):
        return state_input.get(path[2:], UNKNOWN)
    return UNKNOWN
