"""Step Functions state machines that run ECS tasks, as multi-step jobs.

``Task`` states with ``arn:aws:states:::ecs:runTask.sync`` become steps; ``Next`` and ``Parallel`` become
``depends_on``; a ``Map`` over a static list or over the execution input becomes the job's ``matrix``;
``Retry`` and ``TimeoutSeconds`` the step's retries and timeout; ``$.x`` of the execution input a param
(its default from the input of the rule that starts the machine). What a job cannot express the same way
(``Choice``, ``Catch``, ``waitForTaskToken``, paths over earlier states' output) is kept as a comment in the
job file and listed for review.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ecsjobs.catalog.environment import Environment
from ecsjobs.importer.asl import RUN_TASK, keeps_input, step_name
from ecsjobs.importer.imported import Imported, Note
from ecsjobs.importer.run_task import ecs_settings
from ecsjobs.importer.sources import Source

_PARAM = re.compile(r"^\$\.([A-Za-z_][A-Za-z0-9_]*)$")
_MAP_ITEM = ("$$.Map.Item.Value", "$")  # the item, in a Map's ItemSelector or in its processor's states
EXECUTION_START = "logical_date.strftime('%Y-%m-%dT%H:%M:%S.000Z')"  # Step Functions' shape of the time
_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}


class _Walk:
    """One pass over the states from ``StartAt``, collecting steps and what the job needs besides them."""

    def __init__(self, env: Environment, imported: Imported, execution_input: dict[str, Any]) -> None:
        self.env, self.imported, self.execution_input = env, imported, execution_input
        self.steps: dict[str, dict[str, Any]] = {}
        self.params: dict[str, dict[str, Any]] = {}
        self.matrix: dict[str, Any] = {}
        self.item_axis: str | None = None  # inside a Map: the axis its items are
        self.selector: dict[str, Any] = {}  # inside a Map: its ItemSelector (the processor's input)
        self.input_kept = True  # the next state's input is still the execution's (or the Map item's)
        self.state_input_kept = True  # the same, for the state being mapped (its InputPath applied)

    def chain(self, states: dict[str, Any], start: str, after: list[str]) -> list[str]:
        """Walk ``states`` from ``start``; the steps a following state depends on."""
        name: str | None = start
        seen: set[str] = set()
        while name is not None and name not in seen:
            seen.add(name)
            state = states[name]
            kind = state.get("Type")
            kept = self.input_kept
            if kind == "Task":
                after = self.task(name, state, after)
            elif kind == "Parallel":
                tails = []
                for branch in state["Branches"]:  # each branch starts on the Parallel's input
                    self.input_kept = kept
                    tails.append(self.chain(branch["States"], branch["StartAt"], after))
                after = [step for tail in tails for step in tail]
                self.retry_and_catch(name, state, None)
            elif kind == "Map":
                after = self.map(name, state, after)
            elif kind == "Choice":
                self.review(name, "Choice", "a branch on data: the job follows its Default branch", state)
                name = state.get("Default")
                continue
            elif kind in ("Succeed", "Fail"):
                if kind == "Fail":
                    self.review(name, "Fail", "the run fails here: a job step fails on its own", state)
                return after
            elif kind == "Pass":
                self.imported.note("approximated", name, "a Pass state: nothing to run")
            else:  # Wait, and anything newer
                self.review(name, kind or "?", "no job equivalent: not applied", state)
            self.input_kept = kept and keeps_input(state)
            name = None if state.get("End") else state.get("Next")
        return after

    def task(self, name: str, state: dict[str, Any], after: list[str]) -> list[str]:
        resource = state.get("Resource", "")
        if not resource.startswith(RUN_TASK):
            self.review(name, "Resource", f"{resource} is not an ECS task: not a step", state)
            return after
        if resource != f"{RUN_TASK}.sync":
            how = (
                "waits until the task token comes back (SendTaskSuccess or SendTaskFailure), not for the task"
                if resource.endswith(".waitForTaskToken")
                else "does not wait"
            )
            self.review(name, "Resource", f"{resource} {how}; a step waits for its task to stop", state)
        step = step_name(name)
        self.state_input_kept = self.input_kept and state.get("InputPath", "$") == "$"
        note_start = len(self.imported.notes)
        settings = ecs_settings(self.target(state.get("Parameters", {})), self.env, self.imported)
        for index in range(note_start, len(self.imported.notes)):  # say which state the note is about
            note = self.imported.notes[index]
            self.imported.notes[index] = Note(note.level, f"{name}: {note.what}", note.detail)
        settings = _resolve(settings)
        settings.pop("matrix", None)
        if after:
            settings["depends_on"] = list(after)
        self.retry_and_catch(name, state, settings)
        if not state.get("Retry"):  # the catalog's default retries would retry what the source never did
            settings["retries"] = 0
            self.imported.note("exact", f"{name}.Retry", "none: the step does not retry")
        if state.get("TimeoutSeconds"):
            settings["timeout"] = f"{int(state['TimeoutSeconds'])}s"
        # without one a Task state times out after 99999999 s (the Amazon States Language's default:
        # https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html), which is no timeout here: a
        # default timeout of the catalog is flagged once the job is loaded (``importer.limits``)
        if state.get("HeartbeatSeconds"):
            self.imported.note(
                "review",
                f"{name}.HeartbeatSeconds",
                f"{state['HeartbeatSeconds']} s between heartbeats: a step has no heartbeat timeout",
            )
        for key in ("ResultSelector", "ResultPath", "OutputPath", "InputPath"):
            if key in state and state[key] not in ("$", None):
                self.imported.note("approximated", f"{name}.{key}", f"{state[key]!r}: steps pass no output")
        self.steps[step] = settings
        return [step]

    def map(self, name: str, state: dict[str, Any], after: list[str]) -> list[str]:
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if self.matrix or processor is None:
            self.review(name, "Map", "a second or nested Map: not applied", state)
            return after
        items = state.get("Items", state.get("ItemsPath", "$"))
        selector = state.get("ItemSelector") or state.get("Parameters") or {}
        # the axis is named after the field the ItemSelector puts the item in: its environment variable (every
        # axis reaches the container as one) is then the one the processor already sends, if it does
        named = [key[:-2] for key, value in selector.items() if key.endswith(".$") and value == _MAP_ITEM[0]]
        axis = named[0] if named and _PARAM.match(f"$.{named[0]}") else "item"
        if isinstance(items, list):
            self.matrix[axis] = items
        elif isinstance(items, str) and (match := _PARAM.match(items)):
            axis = axis if named else match[1]
            self.param(match[1])
            self.matrix[axis] = f"{{{{ params.{match[1]} }}}}"
        else:
            self.review(
                name, "ItemsPath", f"{items!r}: items from earlier output; set the matrix by hand", state
            )
            return after
        if self.steps or after or state.get("Next"):
            self.imported.note(
                "review", name, "steps outside the Map run once per item too (the matrix is the job's)"
            )
        if state.get("MaxConcurrency"):
            self.imported.note(
                "approximated", f"{name}.MaxConcurrency", "all items run at once (pool limits apply)"
            )
        self.item_axis, self.selector = axis, selector
        self.input_kept = True  # the processor starts on the item (or what the ItemSelector makes of it)
        tails = self.chain(processor["States"], processor["StartAt"], after)
        self.item_axis, self.selector = None, {}
        return tails

    def target(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """The state's ``Parameters`` in the shape of an EventBridge ECS target, ``.$`` paths resolved."""
        p = self.paths(parameters)
        vpc = (p.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration")
        overrides = p.get("Overrides") or {}
        containers = [
            {
                "name": c.get("Name"),
                **({"command": c["Command"]} if "Command" in c else {}),
                "environment": [
                    {"name": e["Name"], "value": str(e["Value"])} for e in c.get("Environment", [])
                ],
                **{k.lower(): c[k] for k in ("Cpu", "Memory", "MemoryReservation") if k in c},
            }
            for c in overrides.get("ContainerOverrides", [])
        ]
        task_input = {
            "containerOverrides": containers,
            **{k.lower(): overrides[k] for k in ("Cpu", "Memory") if k in overrides},
        }
        for key in sorted(set(overrides) - {"ContainerOverrides", "Cpu", "Memory"}):
            task_input[key[0].lower() + key[1:]] = overrides[key]
        cluster = str(p.get("Cluster", self.env.cluster))
        ecs = {
            "TaskDefinitionArn": str(p.get("TaskDefinition", "")),
            **({"LaunchType": p["LaunchType"]} if "LaunchType" in p else {}),
            "CapacityProviderStrategy": [
                {"capacityProvider": i.get("CapacityProvider"), "weight": i.get("Weight", 1)}
                for i in p.get("CapacityProviderStrategy", [])
            ],
            **({"NetworkConfiguration": {"awsvpcConfiguration": vpc}} if vpc else {}),
            **{
                k: p[k]
                for k in ("PlatformVersion", "Tags", "Group", "PropagateTags", "EnableExecuteCommand")
                if k in p
            },
        }
        arn = cluster if cluster.startswith("arn:") else f"arn:aws:ecs:::cluster/{cluster}"
        return {"Arn": arn, "EcsParameters": ecs, "Input": json.dumps(task_input)}

    def paths(self, value: Any) -> Any:
        """``"Key.$": "$.x"`` as ``"Key": <template>``, recursively; the template is a placeholder here
        (:func:`_resolve` makes it Jinja after the mapping, which keeps a source's own braces literal)."""
        if isinstance(value, list):
            return [self.paths(item) for item in value]
        if not isinstance(value, dict):
            return value
        result = {}
        for key, item in value.items():
            if key.endswith(".$") and isinstance(item, str):
                result[key[:-2]] = self.path(item)
            else:
                result[key] = self.paths(item)
        return result

    def path(self, path: str) -> str:
        """A JSONPath as a placeholder: ``$.x`` of the execution input a param; inside a Map the state input
        is the item (or what the Map's ``ItemSelector`` makes of it)."""
        if (path == "$" or path.startswith("$.")) and not self.state_input_kept:
            self.imported.note(
                "review",
                path,
                "this state's input is the output of the state before it (whose ResultPath or OutputPath "
                "replaced its input, or its own InputPath narrows it), not the execution input: mapped as "
                "the execution input's, which it likely meant",
            )
        if self.item_axis is not None:
            axis, selector = self.item_axis, self.selector
            if path in _MAP_ITEM and not selector:
                return f"\x00matrix.{axis}\x00"
            field = path[2:] if _PARAM.match(path) else None
            if field is not None and not selector:
                return f"\x00matrix.{axis}.{field}\x00"
            if field is not None and f"{field}.$" in selector:
                return self.selected(selector[f"{field}.$"])
            if field is not None and field in selector:  # a static value of the ItemSelector: as it is
                value = selector[field]
                return value if isinstance(value, str) else json.dumps(value)
            if selector:
                fields = sorted(key.removesuffix(".$") for key in selector)
                self.imported.note(
                    "review",
                    path,
                    f"not a field of the Map's ItemSelector {fields}: the state's input has no such value; "
                    "sent as the text",
                )
                return path
        if match := _PARAM.match(path):
            self.param(match[1])
            return f"\x00params.{match[1]}\x00"
        if path == "$$.Execution.StartTime":
            self.imported.note(
                "review",
                path,
                "when the execution started, a little after its rule or schedule fired, with milliseconds: "
                "sent as the run's logical date (the fire time) in that format",
            )
            return f"\x00{EXECUTION_START}\x00"
        if path == "$$.Task.Token":
            self.imported.note(
                "review",
                path,
                "the token the container handed back with SendTaskSuccess or SendTaskFailure: a step has "
                "none (it waits for its task to stop) and sends 'no-task-token'; take the callback out",
            )
            return "\x00'no-task-token'\x00"
        self.imported.note("review", path, "a path over earlier output or context: sent as the text")
        return path

    def selected(self, path: str) -> str:
        """A path of the Map's ``ItemSelector``: over the item (``$$.Map.Item.Value``) or the Map's input."""
        axis = self.item_axis
        if path == "$$.Map.Item.Value":
            return f"\x00matrix.{axis}\x00"
        if path.startswith("$$.Map.Item.Value.") and _PARAM.match(
            "$." + path.removeprefix("$$.Map.Item.Value.")
        ):
            return f"\x00matrix.{axis}.{path.removeprefix('$$.Map.Item.Value.')}\x00"
        if path == "$$.Map.Item.Index":
            self.imported.note("review", path, "the item's index has no job equivalent: sent as the text")
            return path
        self.item_axis, selector, self.selector = None, self.selector, {}  # the Map's own input's paths
        try:
            return self.path(path)
        finally:
            self.item_axis, self.selector = axis, selector

    def param(self, name: str) -> None:
        if name in self.params:
            return
        default = self.execution_input.get(name)
        spec: dict[str, Any] = {
            "type": _TYPES.get(type(default), "string"),
            "description": f"The execution input's {name}.",
        }
        spec["default"] = "" if default is None else default
        if default is None:
            self.imported.note("review", f"param {name}", "no value in the schedule's input: empty until set")
        self.params[name] = spec

    def retry_and_catch(self, name: str, state: dict[str, Any], settings: dict[str, Any] | None) -> None:
        retries = state.get("Retry") or []
        if retries and settings is not None:
            first = retries[0]
            settings["retries"] = int(first.get("MaxAttempts", 3))
            settings["retry_delay"] = f"{int(first.get('IntervalSeconds', 1))}s"
            errors = sorted({e for r in retries for e in r.get("ErrorEquals", [])})
            if len(retries) > 1 or errors != ["States.ALL"]:
                self.imported.note(
                    "approximated", f"{name}.Retry", f"on {errors}: steps retry per outcome class"
                )
            if float(first.get("BackoffRate", 2.0)) != 2.0 or "MaxDelaySeconds" in first:
                self.imported.note(
                    "approximated", f"{name}.Retry", "backoff doubles, without a cap, as Airflow's does"
                )
            else:  # Airflow's exponential backoff adds up to the delay again, per task instance
                self.imported.note(
                    "approximated",
                    f"{name}.Retry",
                    "each delay doubles (IntervalSeconds x BackoffRate 2); Airflow waits 1 to 2 times it",
                )
        elif retries:
            self.review(name, "Retry", "a retried Parallel: its steps retry on their own", state)
        if state.get("Catch"):
            self.review(
                name, "Catch", "error routing: a failed step fails the run", {"Catch": state["Catch"]}
            )

    def review(self, state: str, what: str, detail: str, source: Any) -> None:
        shown = json.dumps(source, separators=(",", ":"), default=str)
        self.imported.note("review", f"{state}: {what}", f"{detail} ({shown[:300]})")


def map_state_machine(source: Source, env: Environment, imported: Imported) -> dict[str, Any]:
    """The job keys of a state machine: steps, matrix, params (the schedule is the caller's)."""
    definition = source.definition or {}
    walk = _Walk(env, imported, source.execution_input or {})
    walk.chain(definition.get("States", {}), definition.get("StartAt", ""), [])
    keys: dict[str, Any] = {}
    if walk.params:
        keys["params"] = walk.params
    if walk.matrix:
        keys["matrix"] = walk.matrix
    if not walk.steps:
        imported.note("review", "States", "no ecs:runTask.sync state: nothing to run")
        return keys
    if len(walk.steps) == 1:
        ((_, settings),) = walk.steps.items()
        settings.pop("depends_on", None)
        keys.update(settings)
    else:
        keys["steps"] = walk.steps
    return keys


def state_target(parameters: dict[str, Any], env: Environment) -> dict[str, Any]:
    """A state's ``Parameters`` (no ``.$`` paths left) as an EventBridge ECS target."""
    return _Walk(env, Imported(Source("state_machine", "", "", None, ()), "", None), {}).target(parameters)


def _resolve(value: Any) -> Any:
    """Placeholders as Jinja: ``\\x00params.x\\x00`` as ``{{ params.x }}``."""
    if isinstance(value, str):
        return re.sub("\x00([^\x00]+)\x00", r"{{ \1 }}", value)
    if isinstance(value, list):
        return [_resolve(item) for item in value]
    if isinstance(value, dict):
        return {key: _resolve(item) for key, item in value.items()}
    return value
