"""``python -m ecsjobs import``: EventBridge rules and Scheduler schedules into job files.

From the AWS CLI's JSON (in-process, as a user runs the command) and from the local AWS's events and scheduler
APIs over HTTP. Every job file written must load in the catalog; what cannot map exactly is reported, and
what needs a person is also a comment in the file.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecsjobs.build.factory import build_dags
from ecsjobs.build.render import render_requests
from ecsjobs.catalog.loading import load_catalog
from ecsjobs.cli.main import main
from ecsjobs.importer.jobfiles import edited
from local.settings import REPO

ACCOUNT, REGION = "123456789012", "us-east-1"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/batch-jobs"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecsEventsRole"
LOCAL_NETWORK = {
    "awsvpcConfiguration": {
        "Subnets": ["subnet-0local0000000001a", "subnet-0local0000000001b"],
        "SecurityGroups": ["sg-0local00000000001"],
        "AssignPublicIp": "DISABLED",
    }
}
TIME_TEMPLATE = (
    '{"containerOverrides":[{"name":"batch-container","environment":['
    '{"name":"JOB_TIME","value":<time>},{"name":"REGION","value":"us-east-1"},'
    '{"name":"LABEL","value":"run of <time>"}]}]}'
)


def _task_definition(family: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}"


def _ecs_target(**parameters: Any) -> dict[str, Any]:
    return {
        "Id": "batch",
        "Arn": CLUSTER_ARN,
        "RoleArn": ROLE,
        "EcsParameters": {
            "TaskDefinitionArn": _task_definition("data-processor"),
            "TaskCount": 1,
            "LaunchType": "FARGATE",
            "NetworkConfiguration": LOCAL_NETWORK,
            **parameters,
        },
        "InputTransformer": {"InputPathsMap": {"time": "$.time"}, "InputTemplate": TIME_TEMPLATE},
    }


def _rule(name: str, expression: str | None = "cron(0 2 * * ? *)", **extra: Any) -> dict[str, Any]:
    rule = {
        "Name": name,
        "Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}",
        "State": "ENABLED",
        **extra,
    }
    if expression:
        rule["ScheduleExpression"] = expression
    return rule


def _write(folder: Path, name: str, document: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(document, default=str, indent=1))
    return folder / name


def _import(capsys, *args: str) -> tuple[int, str, str]:
    """``import`` in-process; without ``--config``, against a catalog folder beside ``--out``
    (:func:`_catalog_folder`)."""
    if "--config" not in args and "--out" in args:
        beside = Path(args[args.index("--out") + 1]).parent
        config = beside / "config" if (beside / "config").exists() else _catalog_folder(beside)
        args = ("--config", str(config), *args)
    if "--config" in args:  # a global option: before the command
        index = args.index("--config")
        args = (*args[index : index + 2], *args[:index], *args[index + 2 :])
    code = main([*args[:2], "import", *args[2:]] if args[:1] == ("--config",) else ["import", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _job(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _defaults(root: Path) -> None:
    """The shipped defaults without their timeout, as a team migrating first keeps them: a source never
    stopped its task, so a default timeout differs (``test_a_default_timeout_is_flagged_and_differs``)."""
    text = (REPO / "config" / "defaults.yaml").read_text()
    (root / "defaults.yaml").write_text(
        "".join(line for line in text.splitlines(True) if not line.startswith("timeout:"))
    )


def _catalog_with(jobs: Path, tmp_path: Path) -> Any:
    """The shipped environments and defaults (see :func:`_defaults`) with only these jobs."""
    root = tmp_path / "catalog"
    shutil.copytree(REPO / "config" / "environments", root / "environments")
    _defaults(root)
    shutil.copytree(jobs, root / "jobs")
    return load_catalog(root, "local")


def test_rules_from_the_cli_json_become_valid_jobs_and_the_rest_is_reported(tmp_path, capsys):
    sources, out = tmp_path / "aws", tmp_path / "jobs"
    rules = [
        _rule("daily-data-processor"),
        _rule("Weekly Churn", "cron(0 6 ? * MON *)", State="DISABLED"),
        _rule("spot-fanout", "rate(2 hours)"),
        _rule("report-lambda", "rate(1 day)"),
        _rule("AutoScalingManagedRule", "rate(1 minute)", ManagedBy="autoscaling.amazonaws.com"),
        _rule("on-upload", None, EventPattern='{"source": ["aws.s3"]}'),
        _rule("notify-only", "rate(1 day)"),
    ]
    _write(sources, "rules.json", {"Rules": rules})
    _write(sources, "daily-data-processor.targets.json", {"Targets": [_ecs_target()]})
    _write(sources, "Weekly Churn.targets.json", {"Targets": [_ecs_target(PlatformVersion="1.4.0")]})
    spot = _ecs_target(
        TaskCount=3,
        CapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
        Group="family:spot",
        Tags=[{"Key": "team", "Value": "data"}],
        NetworkConfiguration={
            "awsvpcConfiguration": {"Subnets": ["subnet-elsewhere"], "SecurityGroups": ["sg-x"]}
        },
    )
    del spot["EcsParameters"]["LaunchType"]
    _write(sources, "spot-fanout.targets.json", {"Targets": [spot]})
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:run-report"
    _write(sources, "report-lambda.targets.json", {"Targets": [{"Id": "fn", "Arn": function}]})
    _write(
        sources,
        "run-report.lambda.json",
        {
            "FunctionName": "run-report",
            "FunctionArn": function,
            "Environment": {"Variables": {"MODE": "{{x}}"}},
        },
    )
    _write(
        sources,
        "notify-only.targets.json",
        {"Targets": [{"Id": "t", "Arn": f"arn:aws:sns:{REGION}:{ACCOUNT}:x"}]},
    )

    code, report, errors = _import(capsys, "--from", "file", str(sources), "--out", str(out))

    assert code == 0, errors
    assert sorted(p.name for p in out.iterdir()) == [
        "daily_data_processor.yaml",
        "report_lambda.yaml",
        "spot_fanout.yaml",
        "weekly_churn.yaml",
    ]
    catalog = _catalog_with(out, tmp_path)
    assert catalog.broken == {} and len(catalog.jobs) == 4

    daily = _job(out / "daily_data_processor.yaml")
    assert daily["schedule"] == "cron(0 2 * * ? *)" and "paused" not in daily
    assert (daily["task_definition"], daily["container"], daily["launch"]) == (
        "data-processor",
        "batch-container",
        "fargate",
    )
    assert "network" not in daily, "the environment's default network"
    churn = _job(out / "weekly_churn.yaml")
    assert churn["paused"] is True and churn["platform_version"] == "1.4.0"
    assert build_dags(catalog, register=False)["weekly_churn"].is_paused_upon_creation is True
    fan_out = _job(out / "spot_fanout.yaml")
    assert fan_out["launch"] == "fargate_spot" and fan_out["matrix"] == {"copy": [1, 2, 3]}
    assert fan_out["task_tags"] == {"team": "data"}
    lambda_job = (out / "report_lambda.yaml").read_text()
    assert "# REVIEW Arn: Lambda run-report called RunTask itself" in lambda_job
    assert _job(out / "report_lambda.yaml")["environment"] == {"MODE": "{% raw %}{{x}}{% endraw %}"}

    assert "skipped  rule AutoScalingManagedRule: managed by autoscaling.amazonaws.com" in report
    assert "skipped  rule on-upload: reacts to events, not to a schedule" in report
    assert "skipped  rule notify-only: runs no ECS task and no Lambda (sns)" in report
    section = report.split("rule spot-fanout", 1)[1].split("\ncreated", 1)[0]
    assert "    review: EcsParameters.Group: 'family:spot' has no catalog key: not applied" in section
    assert "    review: EcsParameters.NetworkConfiguration: subnets ['subnet-elsewhere']" in section
    assert "    approximated: EcsParameters.TaskCount: 3 tasks become a matrix of 3 steps" in section
    assert "# REVIEW EcsParameters.NetworkConfiguration" in (out / "spot_fanout.yaml").read_text()
    assert report.splitlines()[-1] == "7 sources: 4 jobs, 2 to review, 3 skipped"


def test_an_imported_rule_sends_the_request_the_rule_sent(tmp_path, capsys):
    """The request ``render`` shows for the imported job carries the rule's cluster, task definition, launch,
    network and overrides, with EventBridge's ``$.time`` as the run's logical date."""
    sources, out = tmp_path / "aws", tmp_path / "jobs"
    _write(sources, "rules.json", {"Rules": [_rule("daily-data-processor")]})
    _write(sources, "daily-data-processor.targets.json", {"Targets": [_ecs_target()]})
    assert _import(capsys, "--from", "file", str(sources), "--out", str(out))[0] == 0
    catalog = _catalog_with(out, tmp_path)

    fired = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    (step,) = render_requests(catalog.jobs["daily_data_processor"], catalog.environment, "local", fired, {})
    request = step["request"]

    assert request["cluster"] == "batch-jobs" and request["taskDefinition"] == "data-processor"
    assert request["launchType"] == "FARGATE"
    vpc = LOCAL_NETWORK["awsvpcConfiguration"]
    assert request["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": vpc["Subnets"],
        "securityGroups": vpc["SecurityGroups"],
        "assignPublicIp": vpc["AssignPublicIp"],
    }
    sent = json.loads(
        TIME_TEMPLATE.replace("<time>", '"2026-03-01T02:00:00Z"').replace(
            'run of "2026-03-01T02:00:00Z"', "run of 2026-03-01T02:00:00Z"
        )
    )
    (override,) = request["overrides"]["containerOverrides"]
    assert override["name"] == sent["containerOverrides"][0]["name"]
    assert {e["name"]: e["value"] for e in override["environment"]} == {
        e["name"]: e["value"] for e in sent["containerOverrides"][0]["environment"]
    }


def test_a_schedule_keeps_its_time_zone_and_start_and_reports_what_airflow_does_differently(tmp_path, capsys):
    sources, out = tmp_path / "aws", tmp_path / "jobs"
    target = _ecs_target()
    target["EcsParameters"]["Tags"] = [{"team": "finance"}]  # Scheduler's tag shape
    target["Input"] = json.dumps(
        {"containerOverrides": [{"name": "app", "command": ["close", "<aws.scheduler.scheduled-time>"]}]}
    )
    del target["InputTransformer"]
    schedule = {
        "Name": "month-end-close",
        "Arn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/month-end-close",
        "ScheduleExpression": "cron(0 6 L * ? *)",
        "ScheduleExpressionTimezone": "Europe/Berlin",
        "StartDate": "2026-02-01T00:00:00+01:00",
        "EndDate": "2099-01-01T00:00:00Z",
        "FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
        "State": "ENABLED",
        "Target": {**target, "RetryPolicy": {"MaximumRetryAttempts": 3}},
    }
    once = {**schedule, "Name": "one-off", "ScheduleExpression": "at(2026-12-24T10:00:00)"}
    once["Arn"] = once["Arn"].replace("month-end-close", "one-off")
    _write(sources, "month-end-close.schedule.json", schedule)
    _write(sources, "one-off.schedule.json", once)

    code, report, errors = _import(capsys, "--from", "file", str(sources), "--out", str(out), "--json")

    assert code == 0, errors
    entries = {entry["name"]: entry for entry in json.loads(report)}
    job = _job(out / "month_end_close.yaml")
    assert (job["schedule"], job["timezone"], job["start_date"]) == (
        "cron(0 6 L * ? *)",
        "Europe/Berlin",
        date(2026, 2, 1),
    )
    assert job["task_tags"] == {"team": "finance"}
    assert job["command"] == ["close", "{{ logical_date.strftime('%Y-%m-%dT%H:%M:%SZ') }}"]
    notes = {(n["level"], n["what"]) for n in entries["month-end-close"]["notes"]}
    assert job["end_date"] == "2098-12-31T23:59:59Z", "EndDate is exclusive, Airflow's end_date inclusive"
    assert {("exact", "StartDate"), ("exact", "EndDate"), ("review", "FlexibleTimeWindow")} <= notes
    assert ("approximated", "RetryPolicy") in notes
    assert "schedule" not in _job(out / "one_off.yaml"), "a one-time at() is not guessed into a schedule"
    assert ("review", "ScheduleExpression") in {(n["level"], n["what"]) for n in entries["one-off"]["notes"]}
    assert _catalog_with(out, tmp_path).broken == {}


def test_a_rerun_keeps_a_persons_edits_shows_the_difference_and_force_overwrites(tmp_path, capsys):
    sources, out = tmp_path / "aws", tmp_path / "jobs"
    _write(sources, "rules.json", {"Rules": [_rule("daily-data-processor")]})
    _write(sources, "daily-data-processor.targets.json", {"Targets": [_ecs_target()]})
    path = out / "daily_data_processor.yaml"
    assert _import(capsys, "--from", "file", str(sources), "--out", str(out))[0] == 0
    assert not edited(path.read_text())

    assert "unchanged" in _import(capsys, "--from", "file", str(sources), "--out", str(out))[1]
    by_hand = path.read_text().replace("launch: fargate", "launch: fargate_spot")
    path.write_text(by_hand)
    _write(sources, "rules.json", {"Rules": [_rule("daily-data-processor", "cron(0 3 * * ? *)")]})

    code, report, _ = _import(capsys, "--from", "file", str(sources), "--out", str(out))

    assert code == 0 and path.read_text() == by_hand
    assert "kept (edited)" in report
    assert "-launch: fargate_spot" in report and "+launch: fargate" in report
    assert "+schedule: cron(0 3 * * ? *)" in report
    code, report, _ = _import(capsys, "--from", "file", str(sources), "--out", str(out), "--force")
    assert code == 0 and "overwritten (edited)" in report
    assert _job(path)["schedule"] == "cron(0 3 * * ? *)" and _job(path)["launch"] == "fargate"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "rules.json",
            '{"Rules": [\n  {"Name": "x",}\n]}',
            "rules.json:2:16: not JSON: Expecting property name",
        ),
        ("odd.json", '{"Something": 1}', "odd.json: not the output of aws events list-rules"),
        (
            "ghost.targets.json",
            '{"Targets": []}',
            "ghost.targets.json: no rule 'ghost' in the list-rules output",
        ),
        ("list.json", "[1, 2]", "list.json:1:1: expected a JSON object"),
    ],
)
def test_a_bad_source_file_is_named_with_its_line_and_nothing_is_written(
    tmp_path, capsys, name, text, message
):
    (tmp_path / "aws").mkdir()
    (tmp_path / "aws" / name).write_text(text)
    code, report, errors = _import(
        capsys, "--from", "file", str(tmp_path / "aws"), "--out", str(tmp_path / "jobs")
    )
    assert code == 1 and report == ""
    assert message in errors and "Traceback" not in errors
    assert not (tmp_path / "jobs").exists()


def _catalog_folder(tmp_path: Path) -> Path:
    """A config folder with the shipped environments and defaults (see :func:`_defaults`) and no jobs: the
    import's target."""
    root = tmp_path / "config"
    shutil.copytree(REPO / "config" / "environments", root / "environments")
    _defaults(root)
    (root / "jobs").mkdir()
    return root


def test_check_passes_for_what_was_imported_and_prints_how_to_turn_the_sources_off(tmp_path, capsys):
    sources, config = tmp_path / "aws", _catalog_folder(tmp_path)
    _write(sources, "rules.json", {"Rules": [_rule("daily-data-processor", "cron(0 2 ? * MON-FRI *)")]})
    _write(sources, "daily-data-processor.targets.json", {"Targets": [_ecs_target()]})
    schedule = {
        "Name": "month-end",
        "GroupName": "finance",
        "Arn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/finance/month-end",
        "ScheduleExpression": "cron(0 6 L * ? *)",
        "ScheduleExpressionTimezone": "Europe/Berlin",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {**_ecs_target(), "Input": json.dumps({"containerOverrides": [{"name": "app"}]})},
    }
    del schedule["Target"]["InputTransformer"], schedule["Target"]["Id"]
    _write(sources, "month-end.schedule.json", schedule)
    assert main(["--config", str(config), "import", "--from", "file", str(sources)]) == 0
    capsys.readouterr()

    code = main(["--config", str(config), "import", "--from", "file", str(sources), "--check"])

    report = capsys.readouterr().out
    assert code == 0, report
    assert "equal    rule daily-data-processor = job daily_data_processor: next 20 fire times" in report
    assert "equal    schedule month-end = job month_end: next 20 fire times" in report
    assert "  aws events disable-rule --name daily-data-processor" in report
    assert "  aws scheduler update-schedule --name month-end --group-name finance --state DISABLED" in report
    assert "--schedule-expression-timezone Europe/Berlin" in report


@pytest.mark.parametrize(
    ("edit", "difference"),
    [
        (("cron(0 2 ? * MON-FRI *)", "cron(0 3 ? * MON-FRI *)"), "fire 1: the job fires at "),
        (("launch: fargate", "launch: fargate_spot"), "request launch: job 'capacity providers FARGATE_SP"),
        (("REGION: us-east-1", "REGION: eu-west-1"), "request containers: job "),
        (("task_definition: data-processor", "task_definition: data-processor:2"), "request taskDefinition"),
        # the rule copies no tags from the task definition (no PropagateTags): the import says so
        (("propagate_tags: false", "propagate_tags: true"), "request propagateTags: job 'TASK_DEFINITION'"),
    ],
)
def test_check_fails_on_any_difference_between_a_source_and_its_job(tmp_path, capsys, edit, difference):
    sources, config = tmp_path / "aws", _catalog_folder(tmp_path)
    _write(sources, "rules.json", {"Rules": [_rule("daily-data-processor", "cron(0 2 ? * MON-FRI *)")]})
    _write(sources, "daily-data-processor.targets.json", {"Targets": [_ecs_target()]})
    assert main(["--config", str(config), "import", "--from", "file", str(sources)]) == 0
    job = config / "jobs" / "daily_data_processor.yaml"
    renamed = job.with_name("nightly_processing.yaml")  # a person renamed the job: found by its header
    renamed.write_text(job.read_text().replace(*edit))
    job.unlink()
    capsys.readouterr()

    code = main(["--config", str(config), "import", "--from", "file", str(sources), "--check"])

    report = capsys.readouterr().out
    assert code == 1
    assert "DIFFERS  rule daily-data-processor = job nightly_processing" in report
    assert difference in report
    assert "disable-rule" not in report


def test_check_fails_for_a_source_without_a_job(tmp_path, capsys):
    sources, config = tmp_path / "aws", _catalog_folder(tmp_path)
    _write(sources, "rules.json", {"Rules": [_rule("daily-data-processor")]})
    _write(sources, "daily-data-processor.targets.json", {"Targets": [_ecs_target()]})

    code = main(["--config", str(config), "import", "--from", "file", str(sources), "--check"])

    assert code == 1
    assert "no job in the catalog was imported from arn:aws:events:" in capsys.readouterr().out
    assert list((config / "jobs").iterdir()) == [], "--check writes nothing"


def _import_and_check(tmp_path: Path, capsys, sources: Path) -> tuple[int, str, int, str, Path]:
    """``import`` into a fresh catalog, then ``import --check`` of the same sources against it."""
    config = _catalog_folder(tmp_path)
    code = main(["--config", str(config), "import", "--from", "file", str(sources)])
    report = capsys.readouterr()
    checked = main(["--config", str(config), "import", "--from", "file", str(sources), "--check"])
    return code, report.out + report.err, checked, capsys.readouterr().out, config / "jobs"


def _notes(report: str) -> set[str]:
    return {line.strip() for line in report.splitlines() if line.startswith("    ")}


def test_a_schedules_context_attributes_are_the_runs_values_or_flagged(tmp_path, capsys):
    """Scheduler fills in <aws.scheduler.*> as it invokes the target; none is left as a literal."""
    target = _ecs_target()
    del target["InputTransformer"]
    attributes = {
        "ARN": "<aws.scheduler.schedule-arn>",
        "AT": "<aws.scheduler.scheduled-time>",
        "EXECUTION": "<aws.scheduler.execution-id>",
        "ATTEMPT": "<aws.scheduler.attempt-number>",
    }
    environment = [{"name": name, "value": value} for name, value in attributes.items()]
    target["Input"] = json.dumps({"containerOverrides": [{"name": "app", "environment": environment}]})
    arn = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/nightly"
    schedule = {"Name": "nightly", "Arn": arn, "ScheduleExpression": "cron(0 1 * * ? *)", "Target": target}
    _write(tmp_path / "aws", "nightly.schedule.json", schedule)

    code, report, checked, check, jobs = _import_and_check(tmp_path, capsys, tmp_path / "aws")

    assert code == 0, report
    assert _job(jobs / "nightly.yaml")["environment"] == {
        "ARN": arn,
        "AT": "{{ logical_date.strftime('%Y-%m-%dT%H:%M:%SZ') }}",
        "EXECUTION": "{{ run_id }}",
        "ATTEMPT": "{{ ti.try_number }}",
    }
    notes = _notes(report)
    assert any(n.startswith("review: Input <aws.scheduler.execution-id>") for n in notes), notes
    assert any(n.startswith("review: Input <aws.scheduler.attempt-number>") for n in notes), notes
    assert not any("schedule-arn" in n or "scheduled-time" in n for n in notes), "those two are exact"
    assert "<aws." not in (jobs / "nightly.yaml").read_text().split("\ndescription:")[1]
    # the check knows what Scheduler sends: only the fresh execution ID differs (and the try number, which
    # the check renders without a try)
    assert checked == 1
    assert "DIFFERS  schedule nightly = job nightly" in check
    assert "(<aws.scheduler.execution-id>: known only once sent)" in check
    assert "'ARN': 'arn:aws:scheduler:" in check


def test_a_rules_predefined_variables_are_the_runs_values_or_flagged(tmp_path, capsys):
    template = (
        '{"containerOverrides":[{"name":"app","environment":['
        '{"name":"RULE","value":"<aws.events.rule-name>"},{"name":"RULE_ARN","value":"<aws.events.rule-arn>"},'
        '{"name":"RECEIVED","value":"<aws.events.event.ingestion-time>"},'
        '{"name":"WHEN","value":<time>}]}]}'
    )
    target = _ecs_target()
    target["InputTransformer"] = {"InputPathsMap": {"time": "$.time"}, "InputTemplate": template}
    _write(tmp_path / "aws", "rules.json", {"Rules": [_rule("nightly-etl")]})
    _write(tmp_path / "aws", "nightly-etl.targets.json", {"Targets": [target]})

    code, report, checked, check, jobs = _import_and_check(tmp_path, capsys, tmp_path / "aws")

    assert code == 0, report
    environment = _job(jobs / "nightly_etl.yaml")["environment"]
    assert environment["RULE"] == "nightly-etl"
    assert environment["RULE_ARN"] == f"arn:aws:events:{REGION}:{ACCOUNT}:rule/nightly-etl"
    assert environment["RECEIVED"] == environment["WHEN"]  # the logical date, flagged: it is a little later
    assert any(
        n.startswith("review: InputTransformer <aws.events.event.ingestion-time>") for n in _notes(report)
    )
    assert _job(jobs / "nightly_etl.yaml")["paused"] is True
    assert checked == 1 and "(<aws.events.event.ingestion-time>: known only once sent)" in check


def test_without_the_ingestion_time_the_rules_constants_check_equal(tmp_path, capsys):
    """The rule's name and ARN are constants: mapped exactly, and the check agrees."""
    template = (
        '{"containerOverrides":[{"name":"app","environment":['
        '{"name":"RULE","value":"<aws.events.rule-name>"},{"name":"RULE_ARN","value":"<aws.events.rule-arn>"}]}]}'
    )
    target = _ecs_target()
    target["InputTransformer"] = {"InputTemplate": template}
    _write(tmp_path / "aws", "rules.json", {"Rules": [_rule("nightly-etl")]})
    _write(tmp_path / "aws", "nightly-etl.targets.json", {"Targets": [target]})

    code, report, checked, check, jobs = _import_and_check(tmp_path, capsys, tmp_path / "aws")

    assert (code, checked) == (0, 0), report + check
    assert "equal    rule nightly-etl = job nightly_etl" in check


def test_a_one_time_schedule_is_checked_without_a_traceback(tmp_path, capsys):
    """at(): a job runs when triggered. Still to come, the source fires and the job does not: DIFFERS; past,
    neither fires again: EQUAL."""
    target = _ecs_target()
    del target["InputTransformer"]
    target["Input"] = json.dumps({"containerOverrides": [{"name": "app"}]})
    for name, moment in (("xmas", "at(2099-12-24T10:00:00)"), ("launch-day", "at(2020-01-02T03:04:05)")):
        arn = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{name}"
        once = {"Name": name, "Arn": arn, "ScheduleExpression": moment, "Target": target}
        once["ScheduleExpressionTimezone"] = "Europe/Berlin"
        _write(tmp_path / "aws", f"{name}.schedule.json", once)

    code, report, checked, check, _jobs = _import_and_check(tmp_path, capsys, tmp_path / "aws")

    assert code == 0, report
    assert checked == 1
    assert "DIFFERS  schedule xmas = job xmas" in check
    assert "the source runs once, at 2099-12-24T09:00:00+00:00; the job runs only when triggered" in check
    assert "equal    schedule launch-day = job launch_day" in check
    assert "Traceback" not in check


def test_a_target_that_leaves_the_launch_to_the_cluster_is_flagged_and_differs(tmp_path, capsys):
    """No LaunchType and no strategy: ECS ran the cluster's default strategy; EC2 without a network
    configuration: a bridge or host task definition. Neither is guessed."""
    default = _ecs_target()
    del default["EcsParameters"]["LaunchType"]
    bridge = _ecs_target(LaunchType="EC2")
    del bridge["EcsParameters"]["NetworkConfiguration"]
    _write(tmp_path / "aws", "rules.json", {"Rules": [_rule("by-default"), _rule("on-bridge")]})
    _write(tmp_path / "aws", "by-default.targets.json", {"Targets": [default]})
    _write(tmp_path / "aws", "on-bridge.targets.json", {"Targets": [bridge]})

    code, report, checked, check, jobs = _import_and_check(tmp_path, capsys, tmp_path / "aws")

    assert code == 0, report
    assert "launch" not in _job(jobs / "by_default.yaml")
    notes = _notes(report)
    assert any(n.startswith("review: EcsParameters.LaunchType: neither a launch type") for n in notes)
    assert any(n.startswith("review: EcsParameters.NetworkConfiguration: none: the task") for n in notes)
    assert checked == 1
    assert 'source "the cluster\'s default capacity provider strategy"' in check
    assert "DIFFERS  rule on-bridge = job on_bridge" in check


def test_what_the_rule_tells_an_orchestration_lambda_is_kept_or_flagged(tmp_path, capsys):
    """The seed's pattern: a rule calls one Lambda with the job's task definition in its input; the Lambda
    calls RunTask. The input's task definition, overrides and count become job keys, every other key a note,
    and nothing of it is exact (the Lambda's code decides what it sent)."""
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orchestration-lambda"
    given = {
        "jobType": "data-processor",
        "taskDef": "data-processor:12",
        "region": "us-east-1",
        "count": 2,
        "overrides": {"containerOverrides": [{"name": "batch-container", "command": ["run", "--full"]}]},
    }
    target = {"Id": "fn", "Arn": function, "Input": json.dumps(given)}
    _write(tmp_path / "aws", "rules.json", {"Rules": [_rule("daily-data-processor")]})
    _write(tmp_path / "aws", "daily-data-processor.targets.json", {"Targets": [target]})

    code, report, _checked, check, jobs = _import_and_check(tmp_path, capsys, tmp_path / "aws")

    assert code == 0, report
    job = _job(jobs / "daily_data_processor.yaml")
    assert (job["task_definition"], job["container"], job["command"]) == (
        "data-processor:12",
        "batch-container",
        ["run", "--full"],
    )
    assert job["matrix"] == {"copy": [1, 2]}
    assert job["paused"] is True
    notes = _notes(report)
    for key in ("jobType", "region", "taskDef", "count", "overrides"):
        assert any(n.startswith(f"review: Input.{key}") for n in notes), (key, notes)
    _code, as_json, _errors = _import(
        capsys, "--from", "file", str(tmp_path / "aws"), "--out", str(tmp_path / "again"), "--json"
    )
    levels = {(n["level"], n["what"]) for n in json.loads(as_json)[0]["notes"]}
    assert {level for level, what in levels if what.startswith("Input")} == {"review"}, levels
    text = (jobs / "daily_data_processor.yaml").read_text()
    assert "# REVIEW Input.jobType: 'data-processor' for the Lambda" in text
    assert "DIFFERS  rule daily-data-processor" in check


def test_a_source_that_cannot_be_mapped_is_named_and_the_others_are_imported(tmp_path, capsys):
    broken = _ecs_target()
    del broken["EcsParameters"]["TaskDefinitionArn"]  # an export cut short
    _write(tmp_path / "aws", "rules.json", {"Rules": [_rule("good"), _rule("broken")]})
    _write(tmp_path / "aws", "good.targets.json", {"Targets": [_ecs_target()]})
    _write(tmp_path / "aws", "broken.targets.json", {"Targets": [broken]})

    code, report, checked, check, jobs = _import_and_check(tmp_path, capsys, tmp_path / "aws")

    assert code == 1
    assert (jobs / "good.yaml").exists() and not (jobs / "broken.yaml").exists()
    assert "FAILED   rule broken: not imported: KeyError: 'TaskDefinitionArn'" in report
    assert "2 sources: 1 jobs, 0 to review, 0 skipped, 1 not imported (above)" in report
    assert "Traceback" not in report + check
    assert checked == 1
    assert "equal    rule good = job good" in check
    assert "DIFFERS  rule broken: the importer cannot map it (KeyError: 'TaskDefinitionArn')" in check


SFN_NETWORK = {"AwsvpcConfiguration": {k: v for k, v in LOCAL_NETWORK["awsvpcConfiguration"].items()}}


def _run_task(stage: str, **fields: Any) -> dict[str, Any]:
    parameters = {
        "Cluster": CLUSTER_ARN,
        "TaskDefinition": "etl-pipeline",
        "LaunchType": "FARGATE",
        "NetworkConfiguration": SFN_NETWORK,
        "Overrides": {
            "ContainerOverrides": [
                {
                    "Name": "batch-container",
                    "Environment": [
                        {"Name": "ETL_STAGE", "Value": stage},
                        {"Name": "JOB_DATE", "Value.$": "$.date"},
                    ],
                }
            ]
        },
        **fields.pop("parameters", {}),
    }
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::ecs:runTask.sync",
        "Parameters": parameters,
        **fields,
    }


def _machine(
    folder: Path, name: str, definition: dict[str, Any], rule_input: dict[str, Any] | None = None
) -> str:
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
    document = {"stateMachineArn": arn, "name": name, "definition": json.dumps(definition), "roleArn": ROLE}
    _write(folder, f"{name}.state-machine.json", document)
    if rule_input is not None:
        _write(folder, "rules.json", {"Rules": [_rule(f"start-{name}", "cron(0 3 * * ? *)")]})
        target = {"Id": "sfn", "Arn": arn, "RoleArn": ROLE, "Input": json.dumps(rule_input)}
        _write(folder, f"start-{name}.targets.json", {"Targets": [target]})
    return arn


ETL = {
    "StartAt": "Extract",
    "States": {
        "Extract": _run_task(
            "extract",
            Next="Transform",
            ResultPath=None,  # the next state gets the execution input, not the task's description
            parameters={"CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]},
        ),
        "Transform": _run_task(
            "transform",
            Next="Load",
            ResultPath=None,
            TimeoutSeconds=7200,
            Retry=[
                {"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 120, "BackoffRate": 2}
            ],
        ),
        "Load": _run_task("load", End=True),
    },
}


def test_a_state_machine_becomes_a_pipeline_with_its_schedule_params_retries_and_timeout(tmp_path, capsys):
    sources, config = tmp_path / "aws", _catalog_folder(tmp_path)
    _machine(sources, "etl-pipeline", ETL, rule_input={"date": "2026-01-01"})

    code, report, errors = _import(capsys, "--from", "file", str(sources), "--out", str(config / "jobs"))

    assert code == 0, errors
    job = _job(config / "jobs" / "etl_pipeline.yaml")
    assert job["schedule"] == "cron(0 3 * * ? *)"
    assert job["params"] == {
        "date": {"type": "string", "description": "The execution input's date.", "default": "2026-01-01"}
    }
    steps = job["steps"]
    assert list(steps) == ["Extract", "Transform", "Load"]
    assert (steps["Extract"]["launch"], "depends_on" in steps["Extract"]) == ("fargate_spot", False)
    assert steps["Transform"]["depends_on"] == ["Extract"] and steps["Load"]["depends_on"] == ["Transform"]
    assert (
        steps["Transform"]["retries"],
        steps["Transform"]["retry_delay"],
        steps["Transform"]["timeout"],
    ) == (
        2,
        "120s",
        "7200s",
    )
    assert steps["Load"]["environment"] == {"ETL_STAGE": "load", "JOB_DATE": "{{ params.date }}"}
    # a state without Retry never retried: the catalog's default retries do not apply; one without
    # TimeoutSeconds ran up to Step Functions' 99999999 s, no timeout, as the catalog's defaults here
    assert (steps["Extract"]["retries"], steps["Load"]["retries"]) == (0, 0)
    assert "timeout" not in steps["Load"] and "timeout" not in report
    assert "skipped  rule start-etl-pipeline: starts the state machine etl-pipeline" in report
    capsys.readouterr()
    assert main(["--config", str(config), "import", "--from", "file", str(sources), "--check"]) == 0, (
        capsys.readouterr().out
    )
    assert "  aws events disable-rule --name start-etl-pipeline" in capsys.readouterr().out

    path = config / "jobs" / "etl_pipeline.yaml"
    path.write_text(path.read_text().replace("ETL_STAGE: load", "ETL_STAGE: loading"))
    assert main(["--config", str(config), "import", "--from", "file", str(sources), "--check"]) == 1
    assert "step Load request containers: job " in capsys.readouterr().out


def test_a_callback_state_is_flagged_and_its_task_token_is_no_literal_secret(tmp_path, capsys):
    """waitForTaskToken: the state waited for the token to come back, and the container got the token in
    TASK_TOKEN. The job file still validates (a template, not a literal secret) and is for review."""
    sources, config = tmp_path / "aws", _catalog_folder(tmp_path)
    state = _run_task("notify", End=True, TimeoutSeconds=600, HeartbeatSeconds=60)
    state["Resource"] = "arn:aws:states:::ecs:runTask.waitForTaskToken"
    token = {"Name": "TASK_TOKEN", "Value.$": "$$.Task.Token"}
    state["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"].append(token)
    definition = {"StartAt": "Notify", "States": {"Notify": state}}
    _machine(sources, "callback", definition, rule_input={"date": "2026-01-01"})

    code, report, _errors = _import(capsys, "--from", "file", str(sources), "--out", str(config / "jobs"))

    assert code == 0, report
    job = _job(config / "jobs" / "callback.yaml")
    assert job["environment"]["TASK_TOKEN"] == "{{ 'no-task-token' }}"
    assert job["paused"] is True
    assert "waits until the task token comes back (SendTaskSuccess or SendTaskFailure)" in report
    assert "review: Notify: $$.Task.Token: the token the container handed back" in report
    assert "review: Notify.HeartbeatSeconds: 60 s between heartbeats" in report
    assert main(["--config", str(config), "import", "--from", "file", str(sources), "--check"]) == 1


REPORT_OVERRIDE = {
    "Name": "batch-container",
    "Environment": [{"Name": "CUSTOMER", "Value.$": "$.customer"}, {"Name": "JOB_DATE", "Value.$": "$.date"}],
}


def test_parallel_map_and_what_a_job_cannot_express_are_mapped_or_kept_for_review(tmp_path, capsys):
    sources, out = tmp_path / "aws", tmp_path / "jobs"
    definition = {
        "StartAt": "PerCustomer",
        "States": {
            "PerCustomer": {
                "Type": "Map",
                "ItemsPath": "$.customers",
                "ItemSelector": {"customer.$": "$$.Map.Item.Value", "date.$": "$.date"},
                "ItemProcessor": {
                    "StartAt": "Both",
                    "States": {
                        "Both": {
                            "Type": "Parallel",
                            "Next": "Route",
                            "Branches": [
                                {"StartAt": "Orders", "States": {"Orders": _run_task("orders", End=True)}},
                                {"StartAt": "Refunds", "States": {"Refunds": _run_task("refunds", End=True)}},
                            ],
                        },
                        "Route": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.late", "BooleanEquals": True, "Next": "Alert"}],
                            "Default": "Report",
                        },
                        "Alert": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": True},
                        "Report": _run_task(
                            "report",
                            End=True,
                            Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Alert"}],
                            parameters={"Overrides": {"ContainerOverrides": [REPORT_OVERRIDE]}},
                        ),
                    },
                },
                "End": True,
            }
        },
    }
    _machine(sources, "customer-reports", definition, {"customers": ["acme", "globex"], "date": "x"})

    code, report, errors = _import(capsys, "--from", "file", str(sources), "--out", str(out))

    assert code == 0, errors
    job = _job(out / "customer_reports.yaml")
    assert job["matrix"] == {"customer": "{{ params.customers }}"}  # named as the ItemSelector names the item
    assert job["params"]["customers"] == {
        "type": "array",
        "description": "The execution input's customers.",
        "default": ["acme", "globex"],
    }
    assert set(job["steps"]) == {"Orders", "Refunds", "Report"}
    assert "depends_on" not in job["steps"]["Orders"] and "depends_on" not in job["steps"]["Refunds"]
    assert job["steps"]["Report"]["depends_on"] == ["Orders", "Refunds"]
    report_environment = {"CUSTOMER": "{{ matrix.customer }}", "JOB_DATE": "{{ params.date }}"}
    assert job["steps"]["Report"]["environment"] == report_environment
    assert job["steps"]["Orders"]["environment"]["JOB_DATE"] == "{{ params.date }}"
    assert job["paused"] is True, "a job with review items waits for its review"
    text = (out / "customer_reports.yaml").read_text()
    assert "# REVIEW Route: Choice: a branch on data: the job follows its Default branch" in text
    assert "# REVIEW Report: Catch: error routing" in text
    assert _catalog_with(out, tmp_path).broken == {}


def test_a_default_timeout_is_flagged_and_differs(tmp_path, capsys):
    """A rule never stopped its task, nor did a Task state without TimeoutSeconds: the shipped defaults'
    2h timeout would. Flagged in the report and the file, and a difference for the gate, per step."""
    sources, config = tmp_path / "aws", tmp_path / "config"
    shutil.copytree(REPO / "config" / "environments", config / "environments")
    shutil.copy(REPO / "config" / "defaults.yaml", config / "defaults.yaml")
    _write(sources, "daily-data-processor.rule.json", _rule("daily-data-processor"))  # describe-rule's shape
    _write(sources, "daily-data-processor.targets.json", {"Targets": [_ecs_target()]})
    _machine(sources, "etl-pipeline", ETL, rule_input={"date": "2026-01-01"})
    out = config / "jobs"

    code, report, errors = _import(
        capsys, "--config", str(config), "--from", "file", str(sources), "--out", str(out)
    )
    checked = main(["--config", str(config), "import", "--from", "file", str(sources), "--check"])
    gate = capsys.readouterr().out

    assert code == 0, errors
    assert "review: run.timeout: job 2:00:00, source none (it let its task run until it stopped)" in report
    assert "review: Load.timeout: job 2:00:00, source none" in report
    assert "review: Transform.timeout" not in report, "TimeoutSeconds 7200 is written as the step's timeout"
    assert "# REVIEW run.timeout:" in (out / "daily_data_processor.yaml").read_text()
    assert _job(out / "daily_data_processor.yaml")["paused"] is True
    assert checked == 1
    assert "step run timeout: job 2:00:00, source none (it let its task run until it stopped)" in gate
    assert "step Load timeout: job 2:00:00, source none" in gate and "step Transform timeout" not in gate
