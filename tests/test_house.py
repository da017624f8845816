"""The library's shape, as the architecture asks for it: no module over 400 lines, the operator a thin shell
under 250, the decisions on the standard library alone. (The layer and cycle contracts between its packages
are import-linter's, in ``make lint``.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.settings import REPO

LIBRARY = REPO / "plugins" / "ecsjobs"
MAX_LINES = 400
MAX_OPERATOR_LINES = 250


def lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("module", sorted(LIBRARY.rglob("*.py")), ids=lambda p: str(p.relative_to(LIBRARY)))
def test_no_module_is_over_400_lines(module: Path):
    assert lines(module) <= MAX_LINES


def test_the_operator_is_a_thin_shell():
    assert lines(LIBRARY / "execution" / "operators.py") < MAX_OPERATOR_LINES


# Run on one lane (LATEST_LANE_ONLY in tests/conftest.py): the decisions and their tests.
STDLIB_ONLY = ("ecsjobs.decisions", "tests.unit.decisions")


def test_the_decisions_and_their_tests_import_the_standard_library_only():
    """What makes the decisions' suite the same on both lanes: beside pytest, no package whose version a
    lane pins, so it runs on the latest lane only."""
    modules = [
        ".".join(path.relative_to(root).with_suffix("").parts)
        for package in STDLIB_ONLY
        for root in (REPO / "plugins", REPO)
        for path in sorted((root / package.replace(".", "/")).glob("*.py"))
    ]
    code = (
        "import sys, importlib, pytest\n"
        "before = set(sys.modules)\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "roots = {m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)\n"
        "print(' '.join(sorted(roots)))\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]), "PATH": os.environ["PATH"]}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)

    assert len(modules) >= 5, modules
    assert done.stdout.split() == ["ecsjobs", "tests"]
