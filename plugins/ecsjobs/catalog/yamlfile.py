"""Load YAML while remembering where every value came from, so errors can name file, line and column."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ecsjobs.errors import EcsJobsError

BOOL_TAG = "tag:yaml.org,2002:bool"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
Location = tuple[int, int]  # 1-based line and column


@dataclass
class YamlDocument:
    """A parsed YAML file and where each mapping key and each value (keyed by its path) starts in it."""

    path: Path
    data: Any
    positions: dict[tuple[str | int, ...], Location] = field(default_factory=dict)
    value_positions: dict[tuple[str | int, ...], Location] = field(default_factory=dict)

    def locate(self, loc: tuple[str | int, ...], value: bool = False) -> Location:
        """Where the key (or with ``value``, the value) at the deepest known prefix of ``loc`` starts."""
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.positions:
                exact = end == len(loc)
                return (self.value_positions if value and exact else self.positions)[loc[:end]]
        return (1, 1)


# libyaml's parser when PyYAML was built with it: catalog files are read at every DAG parse.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CatalogLoader(_SafeLoader):  # type: ignore[valid-type, misc]  # chosen at import
    """YAML as people expect in config files.

    Only ``true``/``false`` are booleans (``on``, ``yes``, ``no`` stay strings), and dates stay strings for
    the schema to check, so a bad date is a located error rather than a crash.
    """


CatalogLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (BOOL_TAG, TIMESTAMP_TAG)]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}
CatalogLoader.add_implicit_resolver(
    BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class YamlFileError(EcsJobsError):
    """The file is not valid YAML; carries the position the parser stopped at."""

    def __init__(self, path: Path, line: int, column: int, message: str):
        super().__init__(message)
        self.path, self.line, self.column, self.message = path, line, column, message

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.line, self.column, self.message)


def load_yaml(path: Path) -> YamlDocument:
    """Parse ``path`` once, build its data from the node tree and index the positions of its keys.

    Whatever the file holds, the cost is bounded and every problem is a :class:`YamlFileError` with a
    position: bytes that are not UTF-8, characters YAML refuses, tabs, duplicate keys, recursive aliases and
    aliases that expand to more than ``MAX_VALUES`` values (a 700-byte "billion laughs" file would otherwise
    take gigabytes to validate).
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        before = raw[: err.start].decode("utf-8")  # valid up to the first bad byte
        line, column = _position(before, len(before))
        message = f"not UTF-8 (byte 0x{raw[err.start]:02x}): save the file as UTF-8"
        raise YamlFileError(path, line, column, message) from None
    loader = CatalogLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check(node)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlFileError(path, line, column, _message(err, text, mark)) from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (libyaml's reader)
        line, column = _position(text, err.position)
        character = f"U+{err.character:04X}" if isinstance(err.character, int) else repr(err.character)
        raise YamlFileError(path, line, column, f"character {character} is not allowed in YAML") from None
    finally:
        loader.dispose()
    doc = YamlDocument(path=path, data=data)
    if node is not None:
        _index(node, (), doc)
    return doc


# Values in one file, aliases expanded: a job file has a few hundred. Past this, aliases are multiplying.
MAX_VALUES = 10_000
MAX_DEPTH = 50  # levels of nesting; a job file has about six
MERGE_TAG = "tag:yaml.org,2002:merge"


def _check(root: yaml.Node) -> None:
    """Duplicate keys, recursive aliases and aliases that expand too far, before anything expands them.

    Aliases make the node tree a graph whose shared nodes count once per reference: the expanded size is
    summed bottom-up over the graph, each node once, so the check costs what the file's text does.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool, int]] = [(root, False, 1)]
    while stack:
        node, done, depth = stack.pop()
        if done:
            on_path.discard(id(node))
            sizes[id(node)] = size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > MAX_VALUES:
                raise yaml.MarkedYAMLError(
                    problem=f"its aliases expand this value to more than {MAX_VALUES:,} values",
                    problem_mark=node.start_mark,
                )
            continue
        if id(node) in sizes:
            continue
        if id(node) in on_path:
            raise yaml.MarkedYAMLError(
                problem="an alias refers to the value that contains it", problem_mark=node.start_mark
            )
        if depth > MAX_DEPTH:
            raise yaml.MarkedYAMLError(
                problem=f"nested more than {MAX_DEPTH} levels deep", problem_mark=node.start_mark
            )
        on_path.add(id(node))
        if isinstance(node, yaml.MappingNode):
            _check_duplicates(node)
        stack.append((node, True, depth))
        stack.extend((child, False, depth + 1) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _check_duplicates(node: yaml.MappingNode) -> None:
    seen: dict[tuple[str, str], yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == MERGE_TAG:
            continue
        first = seen.setdefault((key.tag, key.value), key)
        if first is not key:
            raise yaml.MarkedYAMLError(
                problem=f"duplicate key {key.value!r}, first at line {first.start_mark.line + 1}: "
                "only one of them would count",
                problem_mark=key.start_mark,
            )


def _message(err: yaml.MarkedYAMLError, text: str, mark: Any) -> str:
    """The parser's message, in a user's terms where it is cryptic."""
    if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        return "a tab: YAML indents with spaces, never tabs"
    return f"{err.problem or err}"


def _position(text: str, index: int) -> Location:
    """1-based line and column of the character at ``index``."""
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def _index(node: yaml.Node, prefix: tuple[str | int, ...], doc: YamlDocument) -> None:
    if isinstance(node, yaml.MappingNode):
        children = [(prefix + (key.value,), key, value) for key, value in node.value]
    elif isinstance(node, yaml.SequenceNode):
        children = [(prefix + (i,), item, item) for i, item in enumerate(node.value)]
    else:
        return
    for loc, key_node, value_node in children:
        doc.positions[loc] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        doc.value_positions[loc] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
        _index(value_node, loc, doc)
