"""The importer on one realistic account export (``tests/data/import_corpus/account``: the AWS CLI's
describe-rule, list-targets-by-rule, get-schedule, get-function-configuration and describe-state-machine
output), against what each source does in AWS as its documentation says (``truth.yaml``, written from AWS's
pages, not from the importer).

Each source is EQUAL (``import --check`` says equal and the report has nothing to review), flagged (something
to review, or the check differs) or wrong: said equal while it is not. Wrong must be 0. The job files written
are kept under ``expected/``; ``ECSJOBS_UPDATE_CORPUS=1`` rewrites them, for a person to read the difference.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from datetime import UTC, datetime

import yaml

from ecsjobs.catalog.loading import load_catalog
from ecsjobs.importer import import_command
from local.settings import REPO
from tests.unit.importer.test_import import _catalog_folder

CORPUS = REPO / "tests" / "data" / "import_corpus"
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)  # the export's day: job files say start_date 2026-12-07


def _verdicts(gate: str) -> dict[str, str]:
    """``import --check``'s verdict per source name: equal, DIFFERS or skipped."""
    verdicts = {}
    for line in gate.splitlines():
        verdict, _, rest = line.partition(" ")
        if verdict in ("equal", "DIFFERS", "skipped"):
            title = rest.strip().split(" = ")[0].split(": ")[0]
            verdicts[title.split()[-1]] = verdict
    return verdicts


def measure(truth: dict[str, dict[str, str]], verdicts: dict[str, str], review: dict[str, bool]) -> Counter:
    """EQUAL, flagged (of which equal in truth: a false alarm), wrong, skipped."""
    counts: Counter = Counter()
    for name, entry in truth.items():
        if entry["truth"] == "none":
            counts["skipped" if verdicts[name] == "skipped" else "wrong"] += 1
        elif verdicts[name] == "equal" and not review[name]:
            counts["EQUAL" if entry["truth"] == "equal" else "wrong"] += 1
        elif verdicts[name] == "equal" or not review[name]:  # one says equal, the other does not
            counts["wrong" if entry["truth"] == "differs" else "flagged though equal"] += 1
        else:
            counts["flagged" if entry["truth"] == "differs" else "flagged though equal"] += 1
    return counts


def test_the_account_imports_as_expected_and_no_source_is_called_equal_wrongly(tmp_path, capsys, monkeypatch):
    truth = yaml.safe_load((CORPUS / "truth.yaml").read_text())
    config = _catalog_folder(tmp_path)
    monkeypatch.chdir(REPO)  # the report names the files as given: relative, the same on every machine
    account = [CORPUS.relative_to(REPO) / "account"]

    code = import_command(
        load_catalog(config, "local"), config, account, None, None, config / "jobs", False, True, now=NOW
    )
    report = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    checked = import_command(
        load_catalog(config, "local"),
        config,
        account,
        None,
        None,
        config / "jobs",
        False,
        False,
        check=True,
        now=NOW,
    )
    gate = capsys.readouterr().out

    assert code == 1, "one source could not be imported"
    assert "its definition is not JSON" in report["nightly-billing"]["failed"]
    written = {path.name: path.read_text() for path in sorted((config / "jobs").glob("*.yaml"))}
    written["check.txt"] = gate
    if os.environ.get("ECSJOBS_UPDATE_CORPUS"):
        shutil.rmtree(CORPUS / "expected", ignore_errors=True)
        (CORPUS / "expected").mkdir()
        for name, text in written.items():
            (CORPUS / "expected" / name).write_text(text)
    expected = {path.name: path.read_text() for path in sorted((CORPUS / "expected").iterdir())}
    assert written == expected, "the job files or the check differ from expected/ (ECSJOBS_UPDATE_CORPUS=1)"
    assert load_catalog(config, "local").broken == {}

    verdicts = _verdicts(gate)
    assert sorted(verdicts) == sorted(truth) == sorted(report), "every source is judged, once"
    review = {  # something to review, or not imported (FAILED, with why)
        name: bool(entry["failed"]) or any(note["level"] == "review" for note in entry["notes"])
        for name, entry in report.items()
    }
    counts = measure(truth, verdicts, review)
    wrong = [n for n in truth if measure({n: truth[n]}, verdicts, review)["wrong"]]
    assert counts["wrong"] == 0, f"said equal while they are not: {wrong}"
    assert checked == 1  # the gate stays shut while any source differs
    line = (
        f"| {len(truth)} | {counts['EQUAL']} | {counts['flagged']} | {counts['flagged though equal']} | "
        f"{counts['wrong']} | {counts['skipped']} |"
    )
    assert line in (REPO / "docs" / "migrate.md").read_text(), f"docs/migrate.md's measure is {line}"


def test_the_measure_counts_a_source_called_equal_that_is_not_as_wrong():
    """The measure itself: it must be able to fail."""
    truth = {
        "a": {"truth": "differs"},
        "b": {"truth": "differs"},
        "c": {"truth": "equal"},
        "d": {"truth": "none"},
    }
    verdicts = {"a": "equal", "b": "DIFFERS", "c": "DIFFERS", "d": "skipped"}
    review = {"a": False, "b": False, "c": True, "d": False}
    assert measure(truth, verdicts, review) == {"wrong": 2, "flagged though equal": 1, "skipped": 1}
