"""Load YAML while remembering where every value came from, so errors can name file, line and column."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Location = tuple[int, int]  # 1-based line and column


@dataclass
class YamlDocument:
    """A parsed YAML file and the position of every mapping key and sequence item in it."""

    path: Path
    data: Any
    positions: dict[tuple[str | int, ...], Location] = field(default_factory=dict)

    def locate(self, loc: tuple[str | int, ...]) -> Location:
        """Position of the deepest known prefix of ``loc`` (the file start when nothing matches)."""
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.positions:
                return self.positions[loc[:end]]
        return (1, 1)


class YamlFileError(Exception):
    """The file is not valid YAML; carries the position the parser stopped at."""

    def __init__(self, path: Path, line: int, column: int, message: str):
        super().__init__(message)
        self.path, self.line, self.column, self.message = path, line, column, message


def load_yaml(path: Path) -> YamlDocument:
    """Parse ``path`` with the safe loader and index the positions of its keys."""
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlFileError(path, line, column, f"{err.problem or err}") from None
    doc = YamlDocument(path=path, data=data)
    if node is not None:
        _index(node, (), doc.positions)
    return doc


def _index(node: yaml.Node, prefix: tuple[str | int, ...], positions: dict) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = prefix + (key_node.value,)
            positions[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _index(value_node, key, positions)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            key = prefix + (i,)
            positions[key] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _index(item, key, positions)
