"""Outcome classes: stopped tasks, as DescribeTasks returns them, and RunTask failures judged by the table.

Payloads are built the way boto3 returns them (datetimes as ``datetime``). Reason strings are the ones ECS
writes; AWS documents none for TerminationNotice and InfrastructureHealth, whose rows use plausible text
because only their stop code decides.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecsjobs.decisions.outcome import (
    RULES,
    STOP_REASON_MAX_LENGTH,
    STOP_REASON_PREFIX,
    Outcome,
    OutcomeClass,
    judge_missing,
    judge_run_task_failures,
    judge_task,
    kill_stop_reason,
    timeout_stop_reason,
)

ACCOUNT, REGION = "123456789012", "eu-west-1"
TASK_ID = "9f3c1b7a0e5d4c2b8a6f4e2d0c8b6a41"
TASK_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/batch/{TASK_ID}"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
CREATED = datetime(2026, 3, 10, 6, 0, 3, 127000, tzinfo=UTC)

# stopCode values used by the helpers and rows below.
EXITED_CODE = "EssentialContainerExited"
UNHEALTHY_CODE = "InfrastructureHealth"
SCHEDULER_CODE = "ServiceSchedulerInitiated"

EXITED = "Essential container in task exited"
OOM = "OutOfMemoryError: Container killed due to memory usage"
SPOT = "Your Spot Task was interrupted."
NOTICE = "Task stopped due to termination notice"
UNHEALTHY = "Task stopped because its underlying host failed health checks"
HOST_TERMINATED = "Host EC2 (instance i-0a1b2c3d4e5f67890) terminated."
HOST_STOPPED = "Host EC2 (instance i-0a1b2c3d4e5f67890) stopped."
PULL = (
    "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
    f"{REGISTRY}/nightly-report:1.4.3: {REGISTRY}/nightly-report:1.4.3: not found"
)
SECRETS = (
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
    "failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch "
    f"secret arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/report-db-Xy12Ab from secrets manager: "
    "AccessDeniedException: User is not authorized to perform: secretsmanager:GetSecretValue"
)
LOGS = (
    "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: "
    "failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not "
    "exist. : exit status 1"
)
CANNOT_START = (
    "CannotStartContainerError: Error response from daemon: failed to create shim task: OCI runtime create "
    'failed: runc create failed: unable to start container process: exec: "/app/run": stat /app/run: no '
    "such file or directory: unknown"
)
BY_USER = "Task stopped by user"
TIMED_OUT = timeout_stop_reason(timedelta(hours=2))
KILLED = kill_stop_reason("Airflow task marked failed")
SCALED_IN = "Scaling activity initiated by (deployment ecs-svc/4875932910557360148)"
CAPACITY = (
    "Capacity is unavailable at this time. Please try again later or select a different availability zone."
)


def container(name: str, exit_code: int | None = None, reason: str | None = None) -> dict[str, Any]:
    """A container of a stopped task; one with no exit code never ran, so it has no runtime id or digest."""
    result: dict[str, Any] = {
        "containerArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/batch/{TASK_ID}/{name}-4c1e-9b7d",
        "taskArn": TASK_ARN,
        "name": name,
        "image": f"{REGISTRY}/{name}:1.4.3",
        "lastStatus": "STOPPED",
        "networkBindings": [],
        "networkInterfaces": [{"attachmentId": "5b0e6c2a-attach", "privateIpv4Address": "10.0.12.34"}],
        "healthStatus": "UNKNOWN",
        "cpu": "0",
    }
    if exit_code is not None:
        result |= {"exitCode": exit_code, "runtimeId": f"{TASK_ID}-{name}", "imageDigest": "sha256:3f1a9c"}
    if reason is not None:
        result["reason"] = reason
    return result


def app(exit_code: int | None = None, reason: str | None = None) -> dict[str, Any]:
    return container("app", exit_code, reason)


def worker(exit_code: int) -> dict[str, Any]:
    """A second essential container."""
    return container("worker", exit_code)


def log_router(exit_code: int) -> dict[str, Any]:
    """A FireLens sidecar: non-essential in the task definition."""
    return container("log_router", exit_code)


def stopped(
    stop_code: str | None, reason: str, *containers: dict[str, Any], launch: str = "FARGATE"
) -> dict[str, Any]:
    """One element of DescribeTasks' ``tasks`` for a task that has reached STOPPED."""
    ran = any("exitCode" in c for c in containers)
    ended = CREATED + timedelta(minutes=42 if ran else 1)
    task: dict[str, Any] = {
        "attachments": [{"id": "5b0e6c2a-attach", "type": "ElasticNetworkInterface", "status": "DELETED"}],
        "availabilityZone": f"{REGION}a",
        "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/batch",
        "connectivity": "CONNECTED",
        "connectivityAt": CREATED + timedelta(seconds=8),
        "containers": list(containers),
        "cpu": "1024",
        "memory": "2048",
        "createdAt": CREATED,
        "desiredStatus": "STOPPED",
        "lastStatus": "STOPPED",
        "group": "family:nightly-report",
        "launchType": launch,
        "overrides": {"containerOverrides": [{"name": "app"}], "inferenceAcceleratorOverrides": []},
        "pullStartedAt": CREATED + timedelta(seconds=9),
        "startedBy": "ecsjobs-2b7c5d0e",
        "stoppingAt": ended,
        "executionStoppedAt": ended,
        "stoppedAt": ended + timedelta(seconds=31),
        "stoppedReason": reason,
        "taskArn": TASK_ARN,
        "taskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/nightly-report:7",
        "version": 6,
        "tags": [],
        "healthStatus": "UNKNOWN",
        "enableExecuteCommand": False,
    }
    if stop_code is not None:
        task["stopCode"] = stop_code
    if launch == "FARGATE":
        task |= {"platformVersion": "1.4.0", "platformFamily": "Linux", "ephemeralStorage": {"sizeInGiB": 20}}
    else:
        task["containerInstanceArn"] = f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/batch/7e21c0a9"
    if ran:
        task |= {
            "pullStoppedAt": CREATED + timedelta(seconds=21),
            "startedAt": CREATED + timedelta(seconds=23),
        }
    return task


def exited(*containers: dict[str, Any], reason: str = EXITED) -> dict[str, Any]:
    return stopped(EXITED_CODE, reason, *containers)


def ec2(stop_code: str, reason: str, *containers: dict[str, Any]) -> dict[str, Any]:
    return stopped(stop_code, reason, *containers, launch="EC2")


def spot(*containers: dict[str, Any]) -> dict[str, Any]:
    return stopped("SpotInterruption", SPOT, *containers) | {"capacityProviderName": "FARGATE_SPOT"}


def failed_to_start(reason: str) -> dict[str, Any]:
    return stopped("TaskFailedToStart", reason, app(reason=reason))


def by_user(reason: str, *containers: dict[str, Any]) -> dict[str, Any]:
    return stopped("UserInitiated", reason, *containers)


def case(name, task, cls, container, exit_code, essential=("app",)) -> Any:
    """A row: the task, its essential containers, the class and the deciding container and exit code."""
    return pytest.param(task, essential, cls, container, exit_code, id=name)


C = OutcomeClass
BOTH = ("app", "worker")
CASES = [
    # The essential containers decide when one of them exited.
    case("exit 0", exited(app(0)), C.SUCCEEDED, "app", 0),
    case("exit 1", exited(app(1)), C.APPLICATION_FAILURE, "app", 1),
    case("exit 1, sidecar 0", exited(app(1), log_router(0)), C.APPLICATION_FAILURE, "app", 1),
    case("exit 0, sidecar 1", exited(app(0), log_router(1)), C.SUCCEEDED, "app", 0),
    case("exit 0, sidecar 137", exited(app(0), log_router(137)), C.SUCCEEDED, "app", 0),
    case("exit 0, sidecar 143", exited(app(0), log_router(143)), C.SUCCEEDED, "app", 0),
    case("two essential, one fails", exited(app(0), worker(2)), C.APPLICATION_FAILURE, "worker", 2, BOTH),
    case("one fails, ECS kills other", exited(app(143), worker(2)), C.APPLICATION_FAILURE, "worker", 2, BOTH),
    case("OOM in container reason", exited(app(137, OOM)), C.OUT_OF_MEMORY, "app", 137),
    case("OOM in stoppedReason", exited(app(137), reason=OOM), C.OUT_OF_MEMORY, "app", 137),
    case("137 without OOM", exited(app(137)), C.APPLICATION_FAILURE, "app", 137),
    case("no stopCode (old payload)", stopped(None, EXITED, app(0)), C.SUCCEEDED, "app", 0),
    case("did not start", exited(app(reason=CANNOT_START)), C.FAILED_TO_START, "app", None),
    # Odd payload: nothing shows the job succeeded, nor that the infrastructure failed it.
    case("no exit code, no reason", exited(app()), C.APPLICATION_FAILURE, "app", None),
    # Why ECS stopped the task outranks the exit codes.
    case("Spot, exit 0", spot(app(0)), C.INFRASTRUCTURE_LOSS, "app", 0),
    case("Spot, exit 143", spot(app(143)), C.INFRASTRUCTURE_LOSS, "app", 143),
    case("Spot, SIGTERM ignored", spot(app(137)), C.INFRASTRUCTURE_LOSS, "app", 137),
    case("TerminationNotice, 0", ec2("TerminationNotice", NOTICE, app(0)), C.INFRASTRUCTURE_LOSS, "app", 0),
    case("InfrastructureHealth", ec2(UNHEALTHY_CODE, UNHEALTHY, app(143)), C.INFRASTRUCTURE_LOSS, "app", 143),
    case("Host EC2 terminated", ec2(EXITED_CODE, HOST_TERMINATED, app()), C.INFRASTRUCTURE_LOSS, "app", None),
    case("Host EC2 stopped, 0", ec2(EXITED_CODE, HOST_STOPPED, app(0)), C.INFRASTRUCTURE_LOSS, "app", 0),
    case("image pull", failed_to_start(PULL), C.FAILED_TO_START, "app", None),
    case("secrets", failed_to_start(SECRETS), C.FAILED_TO_START, "app", None),
    case("log group", failed_to_start(LOGS), C.FAILED_TO_START, "app", None),
    case("someone else stopped it, 137", by_user(BY_USER, app(137)), C.STOPPED_EXTERNALLY, "app", 137),
    case("someone else stopped it, 0", by_user(BY_USER, app(0)), C.STOPPED_EXTERNALLY, "app", 0),
    case("this project killed it", by_user(KILLED, app(143)), C.STOPPED_EXTERNALLY, "app", 143),
    case("timeout marker, 137", by_user(TIMED_OUT, app(137)), C.TIMED_OUT, "app", 137),
    case("timeout marker while pulling", by_user(TIMED_OUT, app()), C.TIMED_OUT, "app", None),
    case("service scheduler", stopped(SCHEDULER_CODE, SCALED_IN, app(143)), C.STOPPED_EXTERNALLY, "app", 143),
    case("unknown stop code", stopped("SomethingNew", "New", app(0)), C.STOPPED_EXTERNALLY, "app", 0),
]


@pytest.mark.parametrize(("task", "essential", "cls", "container", "exit_code"), CASES)
def test_a_stopped_task_is_judged_by_the_first_matching_row(task, essential, cls, container, exit_code):
    outcome = judge_task(task, essential=essential, main_container="app")

    assert (outcome.cls, outcome.container, outcome.exit_code) == (cls, container, exit_code)
    assert (outcome.task_arn, outcome.stop_code) == (TASK_ARN, task.get("stopCode"))


def test_the_deciding_container_reason_is_the_outcome_reason_else_the_stopped_reason():
    assert judge_task(exited(app(137, OOM)), ["app"]).reason == OOM
    assert judge_task(exited(app(1)), ["app"]).reason == EXITED
    assert judge_task(spot(app(143, "a container detail")), ["app"]).reason == SPOT


def test_without_essential_names_every_container_decides_the_main_one_first():
    task = exited(app(0), log_router(1))

    assert judge_task(task, ["app"], main_container="app").cls is C.SUCCEEDED
    for everyone in (judge_task(task), judge_task(task, main_container="app")):
        assert (everyone.cls, everyone.container) == (C.APPLICATION_FAILURE, "log_router")
    both_fail = exited(app(1), log_router(1))
    assert judge_task(both_fail, main_container="log_router").container == "log_router"


def test_the_main_container_decides_among_equal_failures():
    task = exited(app(1), worker(1))

    assert judge_task(task, BOTH, main_container="worker").container == "worker"
    assert judge_task(task, BOTH).container == "app"


def test_a_task_serialized_with_string_datetimes_is_judged_the_same():
    task = spot(app(0))

    assert judge_task(json.loads(json.dumps(task, default=str)), ["app"]) == judge_task(task, ["app"])


@pytest.mark.parametrize(
    ("task", "essential", "error"),
    [
        pytest.param(exited(app(0)) | {"lastStatus": "RUNNING"}, ["app"], "not STOPPED", id="running"),
        pytest.param(exited(app(0)), ["main"], r"no container \['main'\]", id="unknown container"),
        pytest.param(exited(app(0)), [], "no essential container", id="no essential container"),
    ],
)
def test_a_task_that_cannot_be_judged_raises(task, essential, error):
    with pytest.raises(ValueError, match=error):
        judge_task(task, essential)


INSTANCE = f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/batch/7e21c0a9"


@pytest.mark.parametrize(
    ("failures", "cls"),
    [
        pytest.param([{"reason": CAPACITY}], C.NO_CAPACITY, id="Fargate capacity"),
        pytest.param([{"arn": INSTANCE, "reason": "RESOURCE:MEMORY"}], C.NO_CAPACITY, id="RESOURCE:MEMORY"),
        pytest.param(
            [{"reason": "RESOURCE:CPU"}, {"reason": "RESOURCE:PORTS"}], C.NO_CAPACITY, id="CPU+ports"
        ),
        pytest.param([{"arn": INSTANCE, "reason": "AGENT"}], C.NO_CAPACITY, id="AGENT"),
        pytest.param([{"reason": "ATTRIBUTE"}], C.NO_CAPACITY, id="ATTRIBUTE"),
        pytest.param([{"reason": "MISSING"}], C.FAILED_TO_START, id="MISSING"),
        pytest.param([{"reason": "RESOURCE:CPU"}, {"reason": "INACTIVE"}], C.FAILED_TO_START, id="mixed"),
    ],
)
def test_run_task_failures_are_no_capacity_only_when_every_one_is_about_placement(failures, cls):
    outcome = judge_run_task_failures(failures)

    assert outcome.cls is cls
    assert (outcome.task_arn, outcome.container, outcome.exit_code, outcome.stop_code) == (None,) * 4


def test_run_task_failures_keep_every_reason_and_detail():
    outcome = judge_run_task_failures([{"reason": "RESOURCE:CPU"}, {"reason": "INACTIVE", "detail": "gone"}])

    assert outcome.reason == "RESOURCE:CPU; INACTIVE: gone"
    with pytest.raises(ValueError, match="no failures"):
        judge_run_task_failures([])


def test_a_task_ecs_no_longer_describes_is_missing():
    outcome = judge_missing(TASK_ARN)

    assert (outcome.cls, outcome.task_arn, outcome.container, outcome.exit_code) == (
        C.MISSING,
        TASK_ARN,
        None,
        None,
    )
    assert outcome.describe().startswith(f"missing: task {TASK_ARN} (MISSING: ")


@pytest.mark.parametrize(
    ("outcome", "text"),
    [
        pytest.param(
            judge_task(exited(app(1)), ["app"]),
            "application failure: container 'app' exited with code 1 "
            "(EssentialContainerExited: Essential container in task exited)",
            id="application failure",
        ),
        pytest.param(
            judge_task(spot(app(0)), ["app"]),
            "infrastructure loss: container 'app' exited with code 0 "
            "(SpotInterruption: Your Spot Task was interrupted.)",
            id="spot",
        ),
        pytest.param(
            judge_task(failed_to_start(PULL), ["app"]),
            f"failed to start: container 'app' has no exit code (TaskFailedToStart: {PULL})",
            id="failed to start",
        ),
        pytest.param(
            judge_task(by_user(TIMED_OUT, app(137)), ["app"]),
            "timed out: container 'app' exited with code 137 "
            "(UserInitiated: Stopped by Airflow (ecsjobs): timed out after 2:00:00)",
            id="timed out",
        ),
        pytest.param(
            judge_run_task_failures([{"reason": CAPACITY}]),
            f"no capacity: RunTask started no task ({CAPACITY})",
            id="no capacity",
        ),
    ],
)
def test_describe_gives_exit_code_stop_code_and_reason_on_one_line(outcome, text):
    assert outcome.describe() == text


def test_outcomes_travel_as_json():
    outcomes = [judge_task(*case.values[:2], main_container="app") for case in CASES]
    outcomes += [judge_run_task_failures([{"reason": CAPACITY}]), judge_missing(TASK_ARN)]

    for outcome in outcomes:
        data = json.loads(json.dumps(outcome.to_dict()))
        assert data == {**dataclasses.asdict(outcome), "cls": outcome.cls.value}


def test_only_a_succeeded_outcome_is_a_success():
    outcomes = {cls: Outcome(cls, TASK_ARN, None, "app", None, "") for cls in C}

    assert [cls for cls, outcome in outcomes.items() if outcome.succeeded] == [C.SUCCEEDED]


def test_stop_reasons_carry_the_project_marker_and_fit_stop_task():
    assert TIMED_OUT == "Stopped by Airflow (ecsjobs): timed out after 2:00:00"
    assert KILLED == "Stopped by Airflow (ecsjobs): killed: Airflow task marked failed"
    long_kill = kill_stop_reason("x" * 300)
    assert long_kill.startswith(f"{STOP_REASON_PREFIX}: killed: ")
    assert len(long_kill) == STOP_REASON_MAX_LENGTH


def test_every_row_tests_either_the_task_or_its_containers_and_the_last_matches_anything():
    assert all((rule.task is None) != (rule.container is None) for rule in RULES)
    assert RULES[-1].cls is C.SUCCEEDED
    assert RULES[-1].task({})
