"""JSON Schemas of the catalog's files, generated from the pydantic models for editors.

The YAML files point at them with a ``# yaml-language-server: $schema=...`` comment, so an editor with the
YAML language server flags unknown keys and wrong types while typing.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from pydantic import BaseModel

from ecsjobs.catalog.environment import Environment
from ecsjobs.catalog.models import Job, JobSettings
from ecsjobs.catalog.prices import Prices

FILES: dict[str, type[BaseModel]] = {
    "job.schema.json": Job,
    "defaults.schema.json": JobSettings,
    "environment.schema.json": Environment,
    "prices.schema.json": Prices,
}


@cache
def schemas() -> dict[str, str]:
    return {name: json.dumps(model.model_json_schema(), indent=2) + "\n" for name, model in FILES.items()}


def schema_dir(config: Path) -> Path:
    return config / "schema"


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schemas().items():
        (directory / name).write_text(text)
        written.append(directory / name)
    return written
