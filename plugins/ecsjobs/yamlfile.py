"""Load YAML while remembering where every value came from, so errors can name file, line and column."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CatalogLoader(_SafeLoader):
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


class YamlFileError(Exception):
    """The file is not valid YAML; carries the position the parser stopped at."""

    def __init__(self, path: Path, line: int, column: int, message: str):
        super().__init__(message)
        self.path, self.line, self.column, self.message = path, line, column, message


def load_yaml(path: Path) -> YamlDocument:
    """Parse ``path`` once, build its data from the node tree and index the positions of its keys."""
    loader = CatalogLoader(path.read_text(encoding="utf-8"))
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlFileError(path, line, column, f"{err.problem or err}") from None
    finally:
        loader.dispose()
    doc = YamlDocument(path=path, data=data)
    if node is not None:
        _index(node, (), doc)
    return doc


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
