"""Problems of the catalog's files, each located at its file, line, column and field: the YAML read and
validated with them, and their report."""

from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ecsjobs.catalog.yamlfile import YamlDocument, YamlFileError, load_yaml
from ecsjobs.errors import EcsJobsError

SHOWN_CHARS = 120  # of a value quoted in an error message
# Keys people write for ours: difflib finds typos, not other words.
OTHER_NAMES = {
    "env": "environment",
    "env_vars": "environment",
    "variables": "environment",
    "cmd": "command",
    "args": "command",
    "depends": "depends_on",
    "dependencies": "depends_on",
    "needs": "depends_on",
    "retry": "retries",
    "cron": "schedule",
    "task_def": "task_definition",
    "taskDefinition": "task_definition",
    "tags_ecs": "task_tags",
    "fallback_to_on_demand": "fallback_after",
}
MAX_PROBLEMS_PER_FILE = 20  # shown; the rest are counted


@dataclass(frozen=True)
class Problem:
    """One mistake in the catalog, located in its file."""

    path: Path
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{_relative(self.path)}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def _relative(path: Path) -> Path:
    """Paths under the working directory print relative to it, as editors and terminals link them. Links
    are not followed: a file that is a symlink loop still prints."""
    try:
        return Path(os.path.abspath(path)).relative_to(Path.cwd())
    except ValueError:
        return path


class CatalogError(EcsJobsError):
    """The catalog cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        by_file: dict[Path, list[Problem]] = {}
        for problem in problems:
            by_file.setdefault(problem.path, []).append(problem)
        super().__init__(report(by_file))

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.problems,)


def report(problems: dict[Path, list[Problem]]) -> str:
    """The problems, one per line, at most ``MAX_PROBLEMS_PER_FILE`` per file: a file that is wrong
    everywhere (a generated or pasted one) must not bury the others."""
    lines = []
    for file_problems in problems.values():
        lines += [str(problem) for problem in file_problems[:MAX_PROBLEMS_PER_FILE]]
        if len(file_problems) > MAX_PROBLEMS_PER_FILE:
            rest = len(file_problems) - MAX_PROBLEMS_PER_FILE
            lines.append(f"{_relative(file_problems[0].path)}: ... and {rest} more problem(s)")
    return "\n".join(lines)


def problem_at(doc: YamlDocument, loc: tuple[str | int, ...], message: str, value: bool = True) -> Problem:
    line, column = doc.locate(loc, value=value)
    return Problem(doc.path, line, column, ".".join(map(str, loc)), message)


def read_document(path: Path, problems: list[Problem], optional: bool = False) -> YamlDocument | None:
    if not os.path.lexists(path):
        if not optional:
            problems.append(Problem(path, 1, 1, "", "file not found"))
        return None
    try:
        doc = load_yaml(path)
    except YamlFileError as err:
        problems.append(Problem(path, err.line, err.column, "", f"invalid YAML: {err.message}"))
        return None
    except OSError as err:  # a symlink loop or a dangling link, a folder, no permission
        problems.append(Problem(path, 1, 1, "", f"cannot be read: {err.strerror or err}"))
        return None
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        problems.append(Problem(path, 1, 1, "", f"expected a mapping of keys, got {type(doc.data).__name__}"))
        return None
    return doc


def validate(
    model: type[BaseModel],
    doc: YamlDocument,
    problems: list[Problem],
    data: dict[str, Any] | None = None,
    loc_prefix: tuple[str | int, ...] = (),
) -> Any:
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as err:
        for number, error in enumerate(err.errors(include_url=False)):
            loc = loc_prefix + tuple(error["loc"])
            line, column = doc.locate(loc, value=error["type"] != "extra_forbidden")
            # Past what a report shows, the plain message: suggestions cost a comparison with every key.
            message = _describe(dict(error), model) if number < MAX_PROBLEMS_PER_FILE else error["msg"]
            problems.append(Problem(doc.path, line, column, ".".join(map(str, loc)), message))
        return None


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        key, known = str(loc[-1]), _model_at(model, loc[:-1]).model_fields
        if OTHER_NAMES.get(key) in known:
            return f"unknown key {key!r}; did you mean {OTHER_NAMES[key]!r}?"
        return f"unknown key {key!r}{did_you_mean(key, known)}"
    if error["type"] == "missing":
        return "required but not set"
    if loc[-1:] == ("task_definition",) and str(error["input"]).startswith("arn:"):
        name = str(error["input"]).rsplit("/", 1)[-1]
        return f"give the family or family:revision, not the ARN: {name!r}"
    if error["type"] == "value_error":
        return f"{error['msg'].removeprefix('Value error, ')} (got {shown(error['input'])})"
    return f"{error['msg']} (got {shown(error['input'])})"


def shown(value: Any) -> str:
    """A value as an error message shows it: cut short, so one huge value cannot flood the output."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 5] + " ...)"


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel]:
    """The nested model that a location points into, so suggestions come from the right set of keys."""
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            continue
        nested = [t for t in _flatten(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        if nested:
            model = nested[0]
    return model


def _flatten(annotation: Any) -> list[Any]:
    args = typing.get_args(annotation)
    return [annotation] + [t for arg in args for t in _flatten(arg)] if args else [annotation]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
