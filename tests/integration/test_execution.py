"""Running steps for real: outcome classes, retries per class, Spot fallback, timeouts, one task per try.

Every test runs a catalog job through ``dag.test()`` (the real task runner, SQLite metadata DB, the real
trigger run in line) against the local AWS, with the task's behaviour chosen by a local-AWS scenario.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest
from airflow.sdk.exceptions import TaskDeferred

from tests.support import TaskInstance, container_environment, no_spot_capacity_once, one_step_job, wait_until


def _tag(task: dict, key: str) -> str:
    return next(t["value"] for t in task["tags"] if t["key"] == key)


def _try(task: dict) -> int:
    return int(_tag(task, "ecsjobs:try"))


QUICK = {"provisioning": 0.1, "pending": 0.1, "duration": 0.5, "stopping": 0.2}


def test_exit_0_succeeds_on_the_first_try(run_job):
    result = run_job("ok", {**QUICK})
    assert (result.state, len(result.tasks)) == ("success", 1)


@pytest.mark.parametrize(
    "case, scenario",
    [
        ("app_failure", {**QUICK, "exit_code": 1}),
        (
            "oom",
            {
                **QUICK,
                "exit_code": 137,
                "container_reasons": {
                    "batch-container": "OutOfMemoryError: Container killed due to memory usage"
                },
            },
        ),
    ],
)
def test_application_failures_and_oom_are_not_retried(run_job, case, scenario):
    result = run_job(case, scenario)
    assert result.state == "failed"
    assert len(result.tasks) == 1  # retries: 3 in the catalog, but these classes get none by default


def test_an_application_failure_is_retried_when_the_job_says_so(run_job):
    result = run_job(
        "app_retry", {**QUICK, "exit_code": 2}, times=1, extra="retry_policy: {application_failure: 1}\n"
    )
    assert result.state == "success"
    assert [_try(t) for t in result.tasks] == [1, 2]


def test_failed_to_start_is_retried(run_job):
    scenario = {
        **QUICK,
        "stop_code": "TaskFailedToStart",
        "stopped_reason": "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
    }
    result = run_job("no_pull", scenario, times=1)
    assert result.state == "success"
    assert [_try(t) for t in result.tasks] == [1, 2]
    assert result.tasks[0]["lastStatus"] == "STOPPED"


def test_a_spot_interruption_with_exit_0_is_no_success_and_the_retry_runs_on_demand(run_job):
    result = run_job(
        "spot_loss",
        {**QUICK, "stop_code": "SpotInterruption", "exit_code": 0},
        launch="fargate_spot",
        times=1,
    )
    assert result.state == "success"
    first, second = result.tasks
    assert first["capacityProviderName"] == "FARGATE_SPOT"
    assert second["launchType"] == "FARGATE" and not second.get("capacityProviderName")
    assert [_tag(t, "ecsjobs:launch") for t in result.tasks] == ["fargate_spot", "on_demand"]


def test_spot_without_capacity_falls_back_to_on_demand_within_the_try(run_job, aws):
    no_spot_capacity_once(aws)
    result = run_job("spot_capacity", {**QUICK}, launch="fargate_spot")
    assert result.state == "success"
    (task,) = result.tasks
    assert task["launchType"] == "FARGATE"


def test_no_capacity_in_earlier_tries_counts_against_its_retry_budget(run_job, aws, monkeypatch):
    from ecsjobs.execution import starting

    monkeypatch.setattr(starting, "CAPACITY_RETRY_DELAYS", (0.1, 0.1))  # within a try; the test needs no wait
    aws.post(
        "/_local/faults",
        {
            "action": "RunTask",
            "kind": "failure",
            "match": {"env": {"CASE": "no_room"}},
            "reason": "RESOURCE:CPU",
        },
    )
    since = time.time()

    result = run_job("no_room", {**QUICK}, retries=5, extra="retry_policy: {no_capacity: 1}\n")

    assert (result.state, result.tasks) == ("failed", [])
    run_tasks = aws.get(f"/_local/calls?action=RunTask&since={since}")
    assert len(run_tasks) == 2 * 3  # two tries (one retry allowed), three RunTask attempts each


def test_fallback_after_0_keeps_spot(run_job):
    result = run_job(
        "spot_only",
        {**QUICK, "stop_code": "SpotInterruption", "exit_code": 143},
        launch="fargate_spot",
        times=1,
        extra="fallback_after: 0\n",
    )
    assert result.state == "success"
    assert [t.get("capacityProviderName") for t in result.tasks] == ["FARGATE_SPOT", "FARGATE_SPOT"]


def test_a_task_stopped_by_someone_else_fails_without_retry(run_job, aws, ecs):

    def stop_when_running():
        for _ in range(200):
            running = [
                t
                for t in aws.get("/_local/tasks")
                if {"name": "CASE", "value": "stopped"} in container_environment(t)
                and t["lastStatus"] == "RUNNING"
            ]
            if running:
                ecs.stop_task(cluster="batch-jobs", task=running[0]["taskArn"], reason="ops: cleaning up")
                return
            time.sleep(0.1)

    stopper = threading.Thread(target=stop_when_running)
    stopper.start()
    result = run_job("stopped", {**QUICK, "duration": 30})
    stopper.join()
    assert result.state == "failed"
    (task,) = result.tasks


def test_the_step_timeout_stops_the_ecs_task_while_deferred(run_job, ecs):
    result = run_job("slow", {**QUICK, "duration": 60}, extra="timeout: 3s\n")
    assert result.state == "failed"
    (task,) = result.tasks  # timed_out gets no retry by default
    described = ecs.describe_tasks(cluster="batch-jobs", tasks=[task["taskArn"]])["tasks"][0]
    assert described["lastStatus"] == "STOPPED"
    assert described["stopCode"] == "UserInitiated"
    assert described["stoppedReason"].startswith("Stopped by Airflow (ecsjobs): timed out after")


def test_a_try_never_starts_a_task_while_one_runs_or_after_one_succeeded(config_dir, monkeypatch, aws):
    """A try's ``execute`` run by hand, as Airflow runs it after a worker crash (the same try again), after
    the scheduler failed a try whose ECS task succeeded (apache/airflow#72716: a retry), and after a user
    cleared the step (a clear raises max_tries to the try number plus retries)."""
    from ecsjobs.build.factory import build_dag
    from ecsjobs.catalog.loading import load_catalog

    (config_dir / "jobs" / "crash.yaml").write_text(one_step_job("crash"))
    summary = {"records_processed": 42, "errors": 0}
    aws.post(
        "/_local/scenarios",
        {"match": {"env": {"CASE": "crash"}}, "scenario": {**QUICK, "duration": 1, "summary": summary}},
    )
    catalog = load_catalog(config_dir, "local")
    operator = build_dag(catalog.jobs["crash"], catalog.environment, "local").get_task("run")
    assert (operator.step_retries, operator.retries) == (3, 5)  # the catalog's 3, two more for adoption
    since = time.time()

    def attempt(try_number: int, cleared_after: int = 0) -> tuple[str, object, TaskInstance]:
        ti = TaskInstance("crash", try_number, max_tries=cleared_after + operator.retries)
        try:
            return "returned", operator.execute({"ti": ti}), ti
        except TaskDeferred as deferred:
            return "deferred", deferred.trigger.task_arn, ti

    first = attempt(1)[1]
    assert attempt(1)[:2] == ("deferred", first)  # the task is still running: waited for again
    deadline = time.monotonic() + 30
    while next(t for t in aws.get("/_local/tasks") if t["taskArn"] == first)["lastStatus"] != "STOPPED":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert attempt(1)[:2] == ("deferred", first)  # already finished: still its own task, no second one

    # Airflow failed try 1 after its task succeeded: tries 2 and 3 adopt it, reported once.
    for try_number in (2, 3):
        kind, output, ti = attempt(try_number)
        assert (kind, output) == ("returned", summary)
        assert ti.pushed["ecs_task_arn"] == first
        assert ti.pushed["ecs_run"] | {"outcome": "succeeded", "adopted_from": 1} == ti.pushed["ecs_run"]
    assert len(aws.get(f"/_local/calls?action=RunTask&since={since}")) == 1
    records = [r for r in _audit(aws, "crash") if r["task_arn"] == first]
    assert [(r["try_number"], r["adopted_from"]) for r in records] == [(2, 1)]

    # A user cleared the succeeded step after try 3: try 4 runs the job again, in a new ECS task.
    kind, second, _ = attempt(4, cleared_after=3)
    assert kind == "deferred" and second != first
    crash = {"name": "CASE", "value": "crash"}
    assert len([t for t in aws.get("/_local/tasks") if crash in container_environment(t)]) == 2


def test_a_try_that_finds_its_task_late_alerts_by_the_tasks_own_start_and_once(config_dir, aws, ecs, slack):
    """Try 1's worker was lost right after RunTask, before its trigger ran (no alert from it): try 2 finds
    the task running and waits for it, late by the task's start, not its own; try 3, once the task has run
    past that time, adopts its success and sends the owed "running late" alert; try 4 finds it sent."""
    from ecsjobs.build.factory import build_dag
    from ecsjobs.catalog.loading import load_catalog

    (config_dir / "jobs" / "late_found.yaml").write_text(
        one_step_job("late_found", "expected_duration: 1s\n")
    )
    aws.post(
        "/_local/scenarios", {"match": {"env": {"CASE": "late_found"}}, "scenario": {**QUICK, "duration": 4}}
    )
    catalog = load_catalog(config_dir, "local")
    operator = build_dag(catalog.jobs["late_found"], catalog.environment, "local").get_task("run")

    def attempt(try_number: int):
        ti = TaskInstance("late_found", try_number, max_tries=operator.retries)
        try:
            return operator.execute({"ti": ti}), ti
        except TaskDeferred as deferred:
            return deferred.trigger, ti

    arn = attempt(1)[0].task_arn
    (task,) = ecs.describe_tasks(cluster="batch-jobs", tasks=[arn])["tasks"]
    time.sleep(1)
    trigger, second = attempt(2)
    assert trigger.task_arn == arn
    late_at = task["createdAt"].timestamp() + 1.5
    assert abs(trigger.late_alert["at"] - late_at) < 0.5 < second.start_date.timestamp() + 1.5 - late_at
    wait_until(
        lambda: ecs.describe_tasks(cluster="batch-jobs", tasks=[arn])["tasks"][0]["lastStatus"] == "STOPPED",
        30,
        "the task to stop",
    )

    for try_number in (3, 4):
        output, ti = attempt(try_number)
        assert ti.pushed["ecs_run"]["adopted_from"] == 1
    late = [m for m in slack.get("/messages") if m["text"].startswith(":turtle: Step running late")]
    assert len(late) == 1 and arn in json.dumps(late[0]), late


@pytest.mark.parametrize("policy, started", [("", 1), ("retry_policy: {application_failure: 1}\n", 2)])
def test_a_retry_after_a_failure_with_no_retry_left_fails_without_running_the_job_again(
    config_dir, aws, policy, started
):
    """Airflow retried a try whose ECS task failed (the race, on a failure): the retry takes that failure as
    the step's when its class has no retry left, and runs the job again only when the policy allows it."""
    from airflow.sdk.exceptions import AirflowFailException

    from ecsjobs.build.factory import build_dag
    from ecsjobs.catalog.loading import load_catalog
    from ecsjobs.decisions.outcome import OutcomeClass
    from ecsjobs.execution.failures import StepFailedFinally

    case = f"lostfail{started}"  # each case its own task instance, and so its own ECS tasks
    (config_dir / "jobs" / f"{case}.yaml").write_text(one_step_job(case, policy))
    aws.post("/_local/scenarios", {"match": {"env": {"CASE": case}}, "scenario": {**QUICK, "exit_code": 5}})
    catalog = load_catalog(config_dir, "local")
    operator = build_dag(catalog.jobs[case], catalog.environment, "local").get_task("run")
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": TaskInstance(case, 1, max_tries=operator.retries)})
    arn = deferred.value.trigger.task_arn
    deadline = time.monotonic() + 30
    while next(t for t in aws.get("/_local/tasks") if t["taskArn"] == arn)["lastStatus"] != "STOPPED":
        assert time.monotonic() < deadline
        time.sleep(0.2)

    retry = TaskInstance(case, 2, max_tries=operator.retries)
    if started == 1:
        with pytest.raises(AirflowFailException, match="application failure.*exited with code 5") as failed:
            operator.execute({"ti": retry})
        assert retry.pushed["ecs_run"]["adopted_from"] == 1
        # The failure carries its outcome, not only a message: callbacks and tests read it.
        assert isinstance(failed.value, StepFailedFinally)
        assert (failed.value.outcome.cls, failed.value.outcome.exit_code) == (
            OutcomeClass.APPLICATION_FAILURE,
            5,
        )
    else:
        with pytest.raises(TaskDeferred):
            operator.execute({"ti": retry})
    assert len(aws.get("/_local/calls?action=RunTask")) == started


def _audit(aws, job: str) -> list[dict]:
    import boto3

    credentials = {"aws_access_key_id": "l", "aws_secret_access_key": "l"}
    logs = boto3.client("logs", endpoint_url=aws.url, region_name="us-east-1", **credentials)
    events = logs.get_log_events(logGroupName="/batch-jobs/audit", logStreamName=job)["events"]
    return [json.loads(event["message"]) for event in events]


def test_retries_0_leaves_the_adoption_retry_to_adoption(run_job):
    """Airflow gets two retries more than the catalog says; a failure that the catalog does not retry never
    spends them, whatever its class's budget."""
    result = run_job(
        "no_retry",
        {**QUICK, "exit_code": 1},
        times=1,
        retries=0,
        extra="retry_policy: {application_failure: 1}\n",
    )
    assert result.dag.get_task("run").retries == 2
    assert (result.state, [_try(t) for t in result.tasks]) == ("failed", [1])


def test_every_essential_container_decides_and_a_sidecar_does_not(run_job, aws, ecs, slack):
    ecs.register_task_definition(
        family="pair",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": name, "image": "busybox", "memory": 256, "essential": essential, **LOGGING}
            for name, essential in (("app", True), ("worker", True), ("sidecar", False))
        ],
    )
    job = {"family": "pair", "container": "app", "retries": 0}
    worker_fails = run_job("worker_fails", {**QUICK, "exit_codes": {"app": 0, "worker": 1}}, **job)
    sidecar_fails = run_job("sidecar_fails", {**QUICK, "exit_codes": {"app": 0, "sidecar": 1}}, **job)

    assert (worker_fails.state, sidecar_fails.state) == ("failed", "success")
    (message,) = slack.get("/messages")
    fields = [field["text"] for block in message["blocks"] for field in block.get("fields", [])]
    assert "*Container / exit code*\nworker / 1" in fields


LOGGING = {
    "logConfiguration": {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": "/ecs/data-processor",
            "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "ecs",
        },
    }
}


@pytest.mark.parametrize(
    "case, job, reason",
    [
        ("missing_definition", {"family": "no-such-family"}, "ClientException"),
        ("huge_overrides", {"environment": {"BIG": "x" * 9000}}, "ECS allows 8192"),
    ],
)
def test_a_request_ecs_refuses_fails_at_once_with_one_alert(run_job, aws, slack, case, job, reason):
    result = run_job(case, None, **job)

    assert (result.state, result.tasks) == ("failed", [])
    assert len(aws.get("/_local/calls?action=RunTask")) <= 1
    (message,) = slack.get("/messages")
    assert reason in json.dumps(message["blocks"]) and "rejected" in message["text"]


def test_a_run_without_a_logical_date_renders_its_dates_from_run_after(run_job):
    """What ``POST /dagRuns`` with ``"logical_date": null`` makes: Airflow gives templates no ``ds``."""
    before = datetime.now(UTC)
    result = run_job("no_date", {**QUICK}, logical_date=None, environment={"JOB_DATE": "{{ ds }}"})

    assert (result.dag_run.logical_date, result.state) == (None, "success")
    (task,) = result.tasks
    assert {"name": "JOB_DATE", "value": before.strftime("%Y-%m-%d")} in container_environment(task)


def test_a_template_error_fails_at_once_naming_the_field(run_job, aws, slack):
    result = run_job("bad_template", None, environment={"OOPS": "{{ no_such_thing.x }}"})

    assert (result.state, result.tasks) == ("failed", [])
    (message,) = slack.get("/messages")
    assert "rejected" in message["text"]
    assert "template error in 'overrides': 'no_such_thing' is undefined" in json.dumps(message["blocks"])


def test_a_step_uses_the_output_a_previous_step_logged(run_job, aws):
    """The summary line a step logs last is its XCom return value, templated into the next step."""
    summary = {"records_processed": 7, "errors": 0, "output": "s3://lake/extract/2026-04-01/"}
    aws.post(
        "/_local/scenarios",
        {"match": {"env": {"STAGE": "extract"}}, "scenario": {**QUICK, "summary": summary}},
    )
    extra = """\
    steps:
      extract:
        environment: {STAGE: extract}
      load:
        depends_on: [extract]
        environment:
          INPUT: "{{ ti.xcom_pull(task_ids='extract')['output'] }}"
          EXTRACT_TASK: "{{ ti.xcom_pull(task_ids='extract', key='ecs_task_arn') }}"
    """
    from ecsjobs.build.loader import load_dags  # noqa: F401 - the fixture loads the job

    result = run_job("handover", None, extra=extra)
    assert result.state == "success"
    extract, load = sorted(result.tasks, key=lambda t: t["createdAt"])
    assert {"name": "INPUT", "value": "s3://lake/extract/2026-04-01/"} in container_environment(load)
    assert {"name": "EXTRACT_TASK", "value": extract["taskArn"]} in container_environment(load)


SENSOR_DAG = """
from airflow.sdk import DAG
from ecsjobs.execution.sensors import EcsTaskCompletionSensor

with DAG(dag_id="external_task", schedule=None):
    EcsTaskCompletionSensor(
        task_id="wait",
        task_arn="{{ dag_run.conf['task_arn'] }}",
        cluster="batch-jobs",
        aws_conn_id="aws_local",
        poll_interval=1,
    )
"""


@pytest.mark.parametrize(
    "scenario, state",
    [
        ({**QUICK}, "success"),
        ({**QUICK, "exit_code": 3}, "failed"),
        ({**QUICK, "stop_code": "SpotInterruption", "exit_code": 0}, "failed"),
    ],
)
def test_the_completion_sensor_judges_a_task_started_elsewhere(
    aws, ecs, airflow_db, tmp_path, monkeypatch, scenario, state
):
    (tmp_path / "external_task.py").write_text(SENSOR_DAG)
    from airflow import settings

    monkeypatch.setattr(settings, "DAGS_FOLDER", str(tmp_path))  # dag.test() needs the DAG in a bundle
    aws.post("/_local/scenarios", {"match": {"started_by": "elsewhere"}, "scenario": scenario})
    network = {
        "awsvpcConfiguration": {
            "subnets": ["subnet-0local0000000001a"],
            "securityGroups": ["sg-0local00000000001"],
        }
    }
    started = ecs.run_task(
        cluster="batch-jobs",
        taskDefinition="data-processor",
        launchType="FARGATE",
        startedBy="elsewhere",
        networkConfiguration=network,
    )
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(tmp_path)).get_dag("external_task")
    dag_run = dag.test(run_conf={"task_arn": started["tasks"][0]["taskArn"]})

    (ti,) = dag_run.get_task_instances()
    assert ti.state == state
