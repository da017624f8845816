"""The migration proven on the account this project replaces: the shipped catalog's scheduled jobs, seeded in
the local AWS as they ran before (``local.legacy``: EventBridge rules, a Scheduler schedule with a time zone,
Step Functions state machines for the pipelines), imported back over HTTP, equal to ``config/jobs`` in what a
source can carry: schedule and time zone, steps and their dependencies, and the RunTask requests.

Two differences are expected and asserted as such: a value the job computes from the run's date (``{{ ds }}``,
a month, a window) comes back as the time the source sent (the event's, or the execution's start), and a
matrix a rule or schedule ran as one target (or ``Parallel`` branch) per combination comes back as one step
per combination. What a source cannot carry (owner, retries, alerts, metrics) is not compared.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from ecsjobs.build.render import render_requests
from ecsjobs.catalog.loading import JobSpec, load_catalog
from ecsjobs.catalog.schedules import next_fire_times
from ecsjobs.cli.main import main
from local import legacy
from local.settings import REPO
from tests.unit.importer.test_import import _catalog_folder

FIRES = 20


def _comparable(entry: dict[str, Any]) -> str:
    """The request as the source could send it: not ``startedBy`` (the job's owner) nor the ``job`` tag."""
    request = {key: value for key, value in entry["request"].items() if key != "startedBy"}
    request["tags"] = [tag for tag in request.get("tags", []) if tag["key"] != "job"]
    return json.dumps(request, sort_keys=True)


def _imported_requests(spec: JobSpec, catalog: Any) -> list[dict[str, Any]]:
    """Rendered for the same run as the shipped job; a value that is that run's time is the source's time."""
    rendered = render_requests(spec, catalog.environment, catalog.environment_name, legacy.REFERENCE, {})
    return [{**entry, "request": _untimed(entry["request"])} for entry in rendered]


def _untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _untimed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_untimed(item) for item in value]
    try:
        return legacy.TIME if datetime.fromisoformat(value) == legacy.REFERENCE else value
    except (TypeError, ValueError):
        return value


def _remove(aws, prefix: str) -> None:
    events, scheduler, sfn = aws.client("events"), aws.client("scheduler"), aws.client("stepfunctions")
    for rule in events.list_rules(NamePrefix=prefix)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        events.remove_targets(Rule=rule["Name"], Ids=[target["Id"] for target in targets])
        events.delete_rule(Name=rule["Name"])
    for schedule in scheduler.list_schedules(NamePrefix=prefix)["Schedules"]:
        scheduler.delete_schedule(Name=schedule["Name"])
    for machine in sfn.list_state_machines()["stateMachines"]:
        if machine["name"].startswith(prefix):
            sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])


def test_the_shipped_catalog_as_it_ran_before_imports_back_equal(aws, tmp_path, capsys):
    shipped = load_catalog(REPO / "config", "local")
    config, prefix = _catalog_folder(tmp_path), f"legacy-{uuid.uuid4().hex[:6]}-"
    try:
        created = legacy.seed(shipped, aws.client, prefix)
        code = main(["--config", str(config), "import", "--from", "aws", "--prefix", prefix])
        report = capsys.readouterr().out
        check = ["--config", str(config), "import", "--from", "aws", "--prefix", prefix, "--check"]
        checked, gate = main(check), capsys.readouterr().out
        report_file = config / "jobs" / f"{prefix.replace('-', '_')}report_generator.yaml"
        original = report_file.read_text()
        report_file.write_text(original.replace("CUSTOMER: globex", "CUSTOMER: initech"))
        edited, edited_gate = main(check), capsys.readouterr().out
        report_file.write_text(original)
    finally:
        _remove(aws, prefix)

    scheduled = sorted(name for name, spec in shipped.jobs.items() if spec.job.schedule)
    assert Counter(kind for kind, _ in created) == {"rule": 13, "schedule": 1, "state_machine": 4}
    assert code == 0, report
    # For review, and so differing: two rules fire at a rate(), which EventBridge counts from the rule's
    # creation (no export holds it), and the pipelines send $$.Execution.StartTime, when the execution
    # started (a little after the fire time). Every other source checks equal.
    assert report.splitlines()[-1] == "18 sources: 14 jobs, 6 to review, 4 skipped", report
    rates = sorted(n for n, spec in shipped.jobs.items() if (spec.job.schedule or "").startswith("rate("))
    assert rates == ["hourly_events_ingest", "inventory_sync"]
    pipelines = [
        name.removeprefix(prefix).replace("-", "_") for kind, name in created if kind == "state_machine"
    ]
    differing = [line.split(" = ")[0].split()[-1] for line in gate.splitlines() if line.startswith("DIFFERS")]
    named = sorted(name.removeprefix(prefix).replace("-", "_") for name in differing)
    assert named == sorted(rates + pipelines), gate
    unknown = "fire times: a rule's rate() counts from the rule's creation, which EventBridge does not return"
    assert gate.count(unknown) == 2 and "8 equal, 6 differ, 4 skipped" in gate, gate
    differences = [line for line in gate.splitlines() if line.startswith("    ") and "note:" not in line]
    starts = [line for line in differences if "$$.Execution.StartTime has no value" in line]
    assert starts and len(differences) == 2 + len(starts), gate  # nothing else differs
    assert checked == 1, gate
    assert edited == 1 and "step globex request containers: job" in edited_gate, edited_gate  # per target
    imported = load_catalog(config, "local")
    stem = prefix.replace("-", "_")
    assert sorted(name.removeprefix(stem) for name in imported.jobs) == scheduled
    for name in scheduled:
        ours, theirs = shipped.jobs[name], imported.jobs[stem + name]
        timezone = ours.job.timezone or "UTC"
        expression = legacy.eventbridge_expression(ours.job.schedule)  # "0 */6 * * *" was cron(0 0/6 * * ? *)
        assert (theirs.job.schedule, theirs.job.timezone or "UTC") == (expression, timezone), name
        assert next_fire_times(theirs.job.schedule, timezone, legacy.REFERENCE, FIRES) == next_fire_times(
            ours.job.schedule, timezone, legacy.REFERENCE, FIRES
        ), name

        expected = legacy.date_free_requests(ours, shipped)
        got = _imported_requests(theirs, imported)
        assert sorted(map(_comparable, got)) == sorted(map(_comparable, expected)), name
        if len(ours.steps) > 1:
            assert {step: s.depends_on for step, s in theirs.steps.items()} == {
                step: s.depends_on for step, s in ours.steps.items()
            }, name
        else:  # one step per matrix combination, side by side
            assert len(theirs.steps) == len(expected), name
            assert all(not step.depends_on for step in theirs.steps.values()), name
