"""The library's shape, as the architecture asks for it: no module over 400 lines, the operator a thin shell
under 250. (The layer and cycle contracts between its packages are import-linter's, in ``make lint``.)"""

from __future__ import annotations

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
