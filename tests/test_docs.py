"""Every YAML example in the README and the docs is valid, and every shell example is run by a test (here,
or by the test named for it; the AWS walk-throughs against the local AWS): a user copies them."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
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


SHELL = re.compile(r"^```(?:bash|sh)\n(.*?)^```", re.MULTILINE | re.DOTALL)
ECSJOBS = ".venv/bin/python -m ecsjobs"
# Commands a test here runs as the docs write them: they need no AWS account and change nothing outside /tmp.
RUN_HERE = ("validate", "list", "render", "schema --check", "import --from file")
# Commands another test runs, each named by the test file and what it runs: too slow, or a server of its own.
RUN_ELSEWHERE = {
    "make run": ("tests/stack/test_make_run.py", '"-m", "local.stack"'),
    "make test": (".ci/run", "make test"),
    "make bundle": ("tests/integration/test_bundle.py", "make bundle"),
    "docker compose": ("tests/stack/compose/project.py", "docker-compose"),
    f"{ECSJOBS} --env prod bundle --check --mwaa-subnets": (
        "tests/integration/test_reach.py",
        '"--mwaa-subnets"',
    ),
    f"{ECSJOBS} --env prod iam-policy": ("tests/integration/test_iam.py", '"iam-policy"'),
    f"{ECSJOBS} prices --refresh": ("tests/unit/cli/test_prices.py", '"--refresh"'),
    f"{ECSJOBS} report": ("tests/integration/test_report.py", '"report"'),
    f"{ECSJOBS} --env prod sync-monitoring": (
        "tests/integration/test_monitoring.py",
        '"sync-monitoring", "--dry-run"',
    ),
    "PYTHONPATH=plugins:. .venv/bin/python -m local.legacy": (
        "tests/integration/test_import_roundtrip.py",
        "legacy.seed(",
    ),
}
# The AWS CLI walk-throughs (an account's setup for MWAA, its export for the importer) run block by block
# against a local AWS in tests/integration/test_aws_walkthroughs.py, which names each block it cannot run
# there (MWAA itself, AWS's VPC template).
WALKTHROUGHS = ("deploy-mwaa.md", "migrate.md")
WALKTHROUGH_COMMANDS = (
    "aws ",
    "until ",
    "for ",
    "version()",
    "cat > /tmp/",
    "export ",
    "mkdir ",
    f"{ECSJOBS} --env prod import --from file aws/",
    f"{ECSJOBS} --env prod import --from aws",
)


def shell_commands() -> list[tuple[str, str]]:
    """Every command of the docs' shell blocks, continuation lines joined, comments and heredocs left out."""
    found = []
    for doc in DOCS:
        for match in SHELL.finditer(doc.read_text()):
            lines, heredoc = [], None
            pending = ""
            for line in match.group(1).replace("\\\n", " ").splitlines():
                if heredoc:
                    heredoc = None if line.strip() == heredoc else heredoc
                    continue
                if marker := re.search(r"<<'?(\w+)'?", line):
                    heredoc = marker.group(1)
                pending = f"{pending} {line.split('  #')[0].strip()}".strip()
                try:
                    shlex.split(pending)
                except ValueError:  # a quoted value goes on over the next lines
                    continue
                if pending and not pending.startswith(("#", "done", "sleep")):
                    lines.append(pending)
                pending = ""
            found += [(doc.name, command) for command in lines]
    return found


COMMANDS = shell_commands()


def test_every_shell_example_is_run_by_a_test():
    unaccounted = [
        (doc, command)
        for doc, command in COMMANDS
        if not command.replace(" --env prod", "").startswith(tuple(f"{ECSJOBS} {c}" for c in RUN_HERE))
        and not command.startswith(tuple(RUN_ELSEWHERE))
        and not (doc in WALKTHROUGHS and command.startswith(WALKTHROUGH_COMMANDS))
        and command != "export PYTHONPATH=plugins"
    ]
    assert unaccounted == []
    for doc in WALKTHROUGHS:
        assert f'"{doc}"' in (REPO / "tests/integration/test_aws_walkthroughs.py").read_text(), doc
    for prefix, (test_file, runs) in RUN_ELSEWHERE.items():
        assert runs in (REPO / test_file).read_text(), f"{test_file} does not run {prefix!r}"


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(command, id=f"{doc}: {command[len(ECSJOBS) + 1 :][:60]}")
        for doc, command in COMMANDS
        if command.startswith(ECSJOBS)
        and command.removeprefix(ECSJOBS).replace("--env prod", "").strip().startswith(RUN_HERE)
        and not command.startswith(WALKTHROUGH_COMMANDS)
    ],
)
def test_a_cli_example_runs_as_written(command: str, tmp_path: Path):
    args = shlex.split(command.replace("/tmp/", f"{tmp_path}/"))
    result = subprocess.run(
        [sys.executable, *args[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'plugins'}{os.pathsep}{REPO}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
