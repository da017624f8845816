"""Every YAML example in the README and the docs is valid: a user copies them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ecsjobs.build.factory import build_dags
from ecsjobs.catalog.loading import environment_problems, load_catalog
from local.settings import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
SCHEMA = re.compile(r"^# yaml-language-server: \$schema=\S*?(job|environment|defaults)\.schema\.json")
EXAMPLES = [
    pytest.param(block, id=f"{doc.name}:{doc.read_text()[: match.start()].count(chr(10)) + 1}")
    for doc in DOCS
    for match in BLOCK.finditer(doc.read_text())
    for block in [match.group(1)]
]


def test_the_docs_have_yaml_examples():
    assert EXAMPLES, "no ```yaml block found: the test below would check nothing"


@pytest.mark.parametrize("example", EXAMPLES)
def test_a_yaml_example_is_valid_where_it_belongs(example: str, tmp_path: Path):
    kind = SCHEMA.match(example)
    assert kind, "a YAML example starts with its schema line, so editors and this test know what it is"
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    for job in (config / "jobs").glob("*.yaml"):
        job.unlink()
    target = {
        "job": config / "jobs" / "example.yaml",
        "environment": config / "environments" / "example.yaml",
        "defaults": config / "defaults.yaml",
    }[kind.group(1)]
    target.write_text(example)

    assert environment_problems(config) == {}
    catalog = load_catalog(config, "local")
    dags = build_dags(catalog)
    assert catalog.broken == {}, catalog.broken
    if kind.group(1) == "job":
        assert list(dags) == ["example"]
