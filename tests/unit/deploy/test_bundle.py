"""The bundle check's import scan (``ecsjobs.deploy.bundle``): what a file may import at run time on MWAA."""

from __future__ import annotations

from ecsjobs.deploy.bundle import _imported_modules


def test_imports_for_the_type_checker_only_are_not_needed_on_mwaa(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "import yaml\n"
        "if TYPE_CHECKING:\n"
        "    from types_boto3_ecs.type_defs import RunTaskRequestTypeDef\n"
        "def later():\n"
        "    import slack_sdk\n"
    )

    assert _imported_modules(module) == {"typing", "yaml", "slack_sdk"}
