"""Imported jobs as job files: a header naming the source, the review items as comments, and a fingerprint.

The fingerprint is the hash of the body as the importer wrote it. A file whose body no longer matches it was
edited by a person, and a re-run leaves it alone (showing the difference) unless forced.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from ecsjobs.importer.imported import Imported

_FINGERPRINT = re.compile(r"^# ecsjobs-import sha256:([0-9a-f]{64})$", re.MULTILINE)

Outcome = Literal["created", "updated", "unchanged", "kept (edited)", "overwritten (edited)"]


@dataclass(frozen=True)
class Written:
    path: Path
    outcome: Outcome
    diff: str = ""  # for a file kept because a person edited it: what the import would change


def render(imported: Imported) -> str:
    """The job file's text."""
    assert imported.job is not None
    body = yaml.safe_dump(imported.job, sort_keys=False, allow_unicode=True, width=110)
    lines = [
        "# yaml-language-server: $schema=../schema/job.schema.json",
        f"# Imported from {imported.source.arn} by python -m ecsjobs import.",
        *(f"# REVIEW {note.what}: {note.detail}" for note in imported.notes if note.level == "review"),
        f"# ecsjobs-import sha256:{_digest(body)}",
    ]
    return "\n".join(lines) + "\n" + body


def write(imported: Imported, folder: Path, force: bool) -> Written:
    """Write the job file unless a person edited the one already there (``force`` overwrites it)."""
    path = folder / f"{imported.name}.yaml"
    text = render(imported)
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return Written(path, "created")
    current = path.read_text(encoding="utf-8")
    if current == text:
        return Written(path, "unchanged")
    if not edited(current):
        path.write_text(text, encoding="utf-8")
        return Written(path, "updated")
    diff = "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True), text.splitlines(keepends=True), str(path), f"{path} (import)"
        )
    )
    if force:
        path.write_text(text, encoding="utf-8")
        return Written(path, "overwritten (edited)", diff)
    return Written(path, "kept (edited)", diff)


def edited(text: str) -> bool:
    """Whether a person changed the file since the importer wrote it (a file it never wrote counts too)."""
    match = _FINGERPRINT.search(text)
    if match is None:
        return True
    body = text[text.index("\n", match.end()) + 1 :] if "\n" in text[match.end() :] else ""
    return _digest(body) != match[1]


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
