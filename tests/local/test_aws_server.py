"""The local AWS over HTTP, as Airflow's ECS operator, trigger and our poller see it: plain boto3 clients.

Each test would fail against stock moto: its tasks advance per DescribeTasks call, have one container with
exit code 0, write no logs and ignore clientToken; RunTask on EC2 needs container instances; it has no faults.
"""

from __future__ import annotations

import json
import time
import urllib.error
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support import LocalServer, wait_until

pytestmark = pytest.mark.integration  # subprocesses or servers: not the unit lane

REGION = "us-east-1"
CLUSTER = "jobs"
ASG_PROVIDER = "ec2-spot-asg"
LOG_GROUP = "/ecs/batch"
STREAM_PREFIX = "ecs"
STOPPING_TIMELINE = ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"]
# Short phases keep the module fast; waits are bounded polls, or sleeps until a moment the server named.
QUICK = {"provisioning": 0.1, "pending": 0.1, "duration": 0.4, "stopping": 0.15}


class Server(LocalServer):
    """``python -m local.aws`` with short default task runs, plus boto3 clients for it."""

    def __init__(self, log_path: Path) -> None:
        super().__init__("local.aws", "/_local/stats", log_path, args=["--default-duration", "0.5"])

    def client(self, service: str, **config: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(**config) if config else None,
        )


@dataclass
class Env:
    server: Server
    ecs: Any
    logs: Any
    network: dict[str, Any]

    def control(self, method: str, path: str, body: Any = None) -> Any:
        return self.server.control(method, path, body)

    def scenario(self, match: dict[str, Any], times: int | None = None, **scenario: Any) -> str:
        body = {"match": match, "scenario": {**QUICK, **scenario}, "times": times}
        return self.control("POST", "/_local/scenarios", body)["id"]

    def run(self, family: str = "job", env: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        overrides = {"containerOverrides": [{"name": "main", "environment": _env(env or {})}]}
        kwargs.setdefault("startedBy", uuid.uuid4().hex[:12])
        response = self.ecs.run_task(
            cluster=CLUSTER,
            taskDefinition=family,
            networkConfiguration=self.network,
            overrides=overrides,
            **kwargs,
        )
        assert response["failures"] == [], response["failures"]
        return response["tasks"][0]

    def describe(self, arn: str) -> dict[str, Any]:
        return self.ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]

    def wait(self, arn: str, status: str = "STOPPED", timeout: float = 10) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def reached() -> bool:
            seen["task"] = self.describe(arn)
            return seen["task"]["lastStatus"] == status

        wait_until(reached, timeout, f"{arn} {status}")
        return seen["task"]

    def messages(self, arn: str, container: str = "main", group: str = LOG_GROUP) -> list[str]:
        stream = f"{STREAM_PREFIX}/{container}/{arn.split('/')[-1]}"
        events = self.logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
        return [event["message"] for event in events["events"]]

    def local_task(self, arn: str) -> dict[str, Any]:
        (task,) = [t for t in self.control("GET", "/_local/tasks") if t["taskArn"] == arn]
        return task


def _env(variables: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in variables.items()]


def _container(name: str, essential: bool, log_group: str | None, **options: str) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": f"local/{name}:1",
        "essential": essential,
        "memory": 256,
    }
    if log_group:
        container["logConfiguration"] = {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": REGION,
                "awslogs-stream-prefix": STREAM_PREFIX,
                **options,
            },
        }
    return container


def _register(ecs: Any, family: str, log_group: str, **options: str) -> None:
    ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            _container("main", True, log_group, **options),
            _container("sidecar", False, None),
        ],
    )


def _seed(server: Server) -> Env:
    ec2, ecs, logs = server.client("ec2"), server.client("ecs"), server.client("logs")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    group = ec2.create_security_group(GroupName="batch", Description="batch jobs", VpcId=vpc)["GroupId"]
    autoscaling = server.client("autoscaling")
    ec2.create_launch_template(
        LaunchTemplateName="batch", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.large"}
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="batch-asg",
        LaunchTemplate={"LaunchTemplateName": "batch"},
        MinSize=0,
        MaxSize=2,
        AvailabilityZones=[f"{REGION}a"],
    )
    (asg,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["batch-asg"])[
        "AutoScalingGroups"
    ]
    ecs.create_capacity_provider(
        name=ASG_PROVIDER, autoScalingGroupProvider={"autoScalingGroupArn": asg["AutoScalingGroupARN"]}
    )
    ecs.create_cluster(
        clusterName=CLUSTER,
        capacityProviders=["FARGATE", "FARGATE_SPOT", ASG_PROVIDER],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
    )
    logs.create_log_group(logGroupName=LOG_GROUP)
    _register(ecs, "job", LOG_GROUP)
    _register(ecs, "other", LOG_GROUP)
    _register(ecs, "no-group", "/ecs/never-created")
    _register(ecs, "own-group", "/ecs/created-by-task", **{"awslogs-create-group": "true"})
    network = {
        "awsvpcConfiguration": {
            "subnets": [s["SubnetId"] for s in subnets[:2]],
            "securityGroups": [group],
            "assignPublicIp": "DISABLED",
        }
    }
    return Env(server, ecs, logs, network)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("local-aws") / "server.log")
    yield server
    assert server.stop() == 0, "SIGTERM should stop the server cleanly"


@pytest.fixture(scope="module")
def seeded(server: Server) -> Env:
    return _seed(server)


@pytest.fixture
def cloud(seeded: Env) -> Env:
    """The seeded server with no rules, faults or call records left by an earlier test."""
    seeded.control("POST", "/_local/reset")
    return seeded


def test_lifecycle_follows_the_wall_clock_however_often_tasks_are_described(cloud: Env) -> None:
    cloud.scenario({"family": "job"}, provisioning=0.3, pending=0.3, duration=0.6, stopping=0.9)
    rapid, slow, unwatched = (cloud.run() for _ in range(3))

    def statuses(arn: str, interval: float) -> list[dict[str, Any]]:
        seen = [cloud.describe(arn)]
        while seen[-1]["lastStatus"] != "STOPPED":
            time.sleep(interval)
            seen.append(cloud.describe(arn))
        return seen

    rapid_seen = statuses(rapid["taskArn"], 0.02)
    slow_seen = statuses(slow["taskArn"], 0.5)

    timeline = ["PROVISIONING", "PENDING", "RUNNING", *STOPPING_TIMELINE]
    assert list(dict.fromkeys(t["lastStatus"] for t in rapid_seen)) == timeline
    assert [t["lastStatus"] for t in slow_seen] == sorted(
        (t["lastStatus"] for t in slow_seen), key=timeline.index
    )
    assert len(slow_seen) < len(rapid_seen)
    for seen in rapid_seen:
        assert seen["desiredStatus"] == ("RUNNING" if seen["lastStatus"] in timeline[:3] else "STOPPED")
    due = unwatched["createdAt"].timestamp() + 2.1  # not described until it should have stopped
    time.sleep(max(0.0, due + 0.05 - time.time()))
    unwatched_task = cloud.describe(unwatched["taskArn"])
    assert unwatched_task["lastStatus"] == "STOPPED"

    offsets = {
        "createdAt": 0,
        "pullStartedAt": 0.3,
        "pullStoppedAt": 0.6,
        "startedAt": 0.6,
        "stoppingAt": 1.2,
        "executionStoppedAt": 1.2,
        "stoppedAt": 2.1,
    }
    for task in (rapid_seen[-1], slow_seen[-1], unwatched_task):
        times = [task[key].timestamp() for key in offsets]
        assert times == sorted(times)
        assert [t - times[0] for t in times] == pytest.approx(list(offsets.values()), abs=0.01)
        assert task["stopCode"] == "EssentialContainerExited"
        assert task["stoppedReason"] == "Essential container in task exited"
        assert task["connectivity"] == "CONNECTED"
        assert task["availabilityZone"].startswith(REGION)
    assert not {"startedAt", "stoppedAt", "stopCode"} & rapid_seen[0].keys()


def test_every_container_follows_the_task_with_its_own_exit_code(cloud: Env) -> None:
    cloud.scenario({"family": "job"}, exit_code=3, provisioning=0.2, pending=0.2, duration=0.6)
    arn = cloud.run()["taskArn"]
    container_status = {"PROVISIONING": "PENDING", "PENDING": "PENDING", "RUNNING": "RUNNING"}

    observed = set()
    while True:
        task = cloud.describe(arn)
        expected = container_status.get(task["lastStatus"], "STOPPED")
        assert [c["lastStatus"] for c in task["containers"]] == [expected, expected]
        observed.add(expected)
        if task["lastStatus"] == "STOPPED":
            break
        time.sleep(0.03)

    assert observed == {"PENDING", "RUNNING", "STOPPED"}
    containers = {c["name"]: c for c in task["containers"]}
    assert {c["image"] for c in containers.values()} == {"local/main:1", "local/sidecar:1"}
    assert {c["taskArn"] for c in containers.values()} == {arn}
    assert containers["main"]["exitCode"] == 3
    assert containers["sidecar"]["exitCode"] == 0


def test_exit_codes_per_container_override_the_default(cloud: Env) -> None:
    cloud.scenario({"family": "job"}, exit_codes={"sidecar": 2})

    task = cloud.wait(cloud.run()["taskArn"])

    assert {c["name"]: c["exitCode"] for c in task["containers"]} == {"main": 0, "sidecar": 2}


def test_stop_code_stopped_reason_and_container_reason(cloud: Env) -> None:
    oom = "OutOfMemoryError: Container killed due to memory usage"
    cloud.scenario({"family": "job"}, exit_code=137, container_reasons={"main": oom})
    cloud.scenario({"family": "other"}, stop_code="InfrastructureHealth", stopped_reason="Host went away")

    killed = cloud.wait(cloud.run("job")["taskArn"])
    unhealthy = cloud.wait(cloud.run("other")["taskArn"])

    assert (killed["stopCode"], killed["stoppedReason"]) == (
        "EssentialContainerExited",
        "Essential container in task exited",
    )
    assert killed["desiredStatus"] == "STOPPED"
    main, sidecar = killed["containers"]
    assert (main["exitCode"], main["reason"]) == (137, oom)
    assert "reason" not in sidecar
    assert (unhealthy["stopCode"], unhealthy["stoppedReason"]) == ("InfrastructureHealth", "Host went away")


def test_interruptions_exit_0_with_their_stop_code_and_reason(cloud: Env) -> None:
    expected = {
        "SpotInterruption": "Your Spot Task was interrupted.",
        "TerminationNotice": "Task stopped due to termination notice",
        "InfrastructureHealth": "Host EC2 (instance i-0abc) terminated.",
    }
    for stop_code in expected:
        cloud.scenario({"started_by": stop_code}, stop_code=stop_code)
    strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    arns = {
        code: cloud.run(startedBy=code, capacityProviderStrategy=strategy)["taskArn"] for code in expected
    }

    for stop_code, arn in arns.items():
        task = cloud.wait(arn)
        assert (task["stopCode"], task["stoppedReason"]) == (stop_code, expected[stop_code])
        assert [c["exitCode"] for c in task["containers"]] == [0, 0]
        assert (task["launchType"], task["capacityProviderName"]) == ("FARGATE", "FARGATE_SPOT")


def test_task_failed_to_start_never_runs(cloud: Env) -> None:
    cloud.scenario({"family": "job"}, stop_code="TaskFailedToStart", provisioning=0.2, pending=0.4)
    arn = cloud.run()["taskArn"]

    statuses = []
    while (task := cloud.describe(arn))["lastStatus"] != "STOPPED":
        statuses.append(task["lastStatus"])
        time.sleep(0.02)

    assert "RUNNING" not in statuses and "PENDING" in statuses
    assert task["stopCode"] == "TaskFailedToStart"
    reason = "CannotPullContainerError: pull image manifest has been retried 5 time(s)"
    assert task["stoppedReason"] == reason
    assert "startedAt" not in task and "pullStoppedAt" not in task
    for container in task["containers"]:
        assert container["lastStatus"] == "STOPPED"
        assert "exitCode" not in container
        assert container["reason"] == reason


def test_missing_log_group_fails_the_task_unless_the_task_may_create_it(cloud: Env) -> None:
    failed = cloud.wait(cloud.run("no-group")["taskArn"])
    created = cloud.wait(cloud.run("own-group")["taskArn"])

    assert failed["stopCode"] == "TaskFailedToStart"
    assert failed["stoppedReason"].startswith("ResourceInitializationError: failed to validate logger args")
    assert "The specified log group does not exist." in failed["stoppedReason"]
    assert created["stopCode"] == "EssentialContainerExited"
    assert cloud.messages(created["taskArn"], group="/ecs/created-by-task")[-1] == (
        '{"records_processed":100,"errors":0}'
    )


def test_logs_are_written_as_time_passes_with_the_summary_last(cloud: Env) -> None:
    lines = ["starting", "half way", "almost done"]
    summary = {"records_processed": 120, "errors": 0}
    cloud.scenario({"family": "job"}, duration=2.0, log_lines=lines, summary=summary)
    arn = cloud.wait(cloud.run()["taskArn"], "RUNNING")["taskArn"]

    wait_until(lambda: cloud.messages(arn) != [], timeout=5, what="the first log line")
    early = cloud.messages(arn)
    task = cloud.wait(arn)

    final = cloud.messages(arn)
    assert final == [*lines, '{"records_processed":120,"errors":0}']
    assert early == final[: len(early)] and len(early) < len(final)
    events = cloud.logs.get_log_events(
        logGroupName=LOG_GROUP, logStreamName=f"ecs/main/{arn.split('/')[-1]}", startFromHead=True
    )["events"]
    stamps = [event["timestamp"] / 1000 for event in events]
    assert stamps == sorted(stamps)
    assert task["startedAt"].timestamp() < stamps[0] and stamps[-1] == pytest.approx(
        task["executionStoppedAt"].timestamp(), abs=0.01
    )
    streams = cloud.logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix="ecs/sidecar/")
    assert streams["logStreams"] == []  # the sidecar has no awslogs configuration


def test_client_token_returns_the_same_task(cloud: Env) -> None:
    first = cloud.run(clientToken="run-once-1", startedBy="token-test")
    again = cloud.run(clientToken="run-once-1", startedBy="token-test")
    other = cloud.run(clientToken="run-once-2", startedBy="token-test")

    assert again["taskArn"] == first["taskArn"] != other["taskArn"]
    assert again["lastStatus"] in ("PROVISIONING", "PENDING", "RUNNING")
    assert len(cloud.ecs.list_tasks(cluster=CLUSTER, startedBy="token-test")["taskArns"]) == 2
    assert cloud.local_task(first["taskArn"])["clientToken"] == "run-once-1"


def test_overrides_over_8192_characters_are_refused_as_ecs_refuses_them(cloud: Env) -> None:
    started_by = uuid.uuid4().hex[:12]
    # {"containerOverrides":[{"name":"main","environment":[{"name":"BIG","value":""}]}]}, in compact JSON
    frame = 82
    cloud.run(env={"BIG": "x" * (8192 - frame)}, startedBy=started_by)  # exactly at the limit

    with pytest.raises(ClientError) as refused:
        cloud.run(env={"BIG": "x" * (8192 - frame + 1)}, startedBy=started_by)

    error = refused.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "InvalidParameterException",
        "Container Overrides length must be at most 8192",
    )
    assert len(cloud.ecs.list_tasks(cluster=CLUSTER, startedBy=started_by)["taskArns"]) == 1


def test_stop_task_is_user_initiated_and_kills_running_containers(cloud: Env) -> None:
    cloud.scenario({"family": "job"}, duration=10, log_lines=["working"])
    running = cloud.wait(cloud.run()["taskArn"], "RUNNING")["taskArn"]
    cloud.scenario({"family": "other"}, provisioning=10)
    provisioning = cloud.run("other")["taskArn"]

    answer = cloud.ecs.stop_task(cluster=CLUSTER, task=running, reason="cancelled by the test")["task"]
    cloud.ecs.stop_task(cluster=CLUSTER, task=provisioning)

    assert answer["taskArn"] == running and answer["desiredStatus"] == "STOPPED"
    stopped = cloud.wait(running)
    assert (stopped["stopCode"], stopped["stoppedReason"]) == ("UserInitiated", "cancelled by the test")
    assert [c["exitCode"] for c in stopped["containers"]] == [137, 137]
    assert cloud.messages(running) == ["received SIGTERM, shutting down"]  # no "working", no summary
    never_started = cloud.wait(provisioning)
    assert (never_started["stopCode"], never_started["stoppedReason"]) == (
        "UserInitiated",
        "Task stopped by user",
    )
    assert "startedAt" not in never_started
    assert all("exitCode" not in c for c in never_started["containers"])


def test_concurrent_tasks_follow_their_own_scenarios(cloud: Env) -> None:
    cloud.scenario({"env": {"MODE": "fail"}}, exit_code=1, duration=0.6)
    cloud.scenario(
        {"family": "other"}, exit_code=0, duration=0.2, summary={"records_processed": 7, "errors": 0}
    )

    failing = cloud.run(env={"MODE": "fail"})["taskArn"]
    passing = cloud.run(env={"MODE": "ok"})["taskArn"]
    other = cloud.run("other")["taskArn"]

    exit_codes = {arn: cloud.wait(arn)["containers"][0]["exitCode"] for arn in (failing, passing, other)}
    assert exit_codes == {failing: 1, passing: 0, other: 0}
    assert cloud.local_task(passing)["scenario"]["summary"] == {"records_processed": 100, "errors": 0}
    assert cloud.messages(other)[-1] == '{"records_processed":7,"errors":0}'
    assert cloud.local_task(other)["scenario"]["duration"] == 0.2


def test_a_rule_with_times_is_spent(cloud: Env) -> None:
    cloud.scenario({"started_by": "spend"}, times=2, exit_code=4)

    arns = [cloud.run(startedBy="spend")["taskArn"] for _ in range(3)]

    assert [cloud.local_task(arn)["scenario"]["exit_code"] for arn in arns] == [4, 4, 0]
    assert cloud.control("GET", "/_local/scenarios") == []


def test_capacity_failures_hit_spot_only_and_only_n_times(cloud: Env) -> None:
    reason = "Capacity is unavailable at this time. Please try again later or select a different zone."
    fault = {
        "action": "RunTask",
        "kind": "failure",
        "reason": reason,
        "times": 2,
        "match": {"launch": "FARGATE_SPOT"},
    }
    cloud.control("POST", "/_local/faults", fault)
    spot = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]

    def run_spot() -> dict[str, Any]:
        return cloud.ecs.run_task(
            cluster=CLUSTER,
            taskDefinition="job",
            networkConfiguration=cloud.network,
            capacityProviderStrategy=spot,
        )

    first = run_spot()
    on_demand = cloud.run(launchType="FARGATE")
    second = run_spot()
    third = run_spot()

    for failed in (first, second):
        assert failed["tasks"] == []
        assert [f["reason"] for f in failed["failures"]] == [reason]
        assert failed["failures"][0]["arn"].endswith(f":cluster/{CLUSTER}")
    assert on_demand["launchType"] == "FARGATE"
    assert third["failures"] == [] and third["tasks"][0]["capacityProviderName"] == "FARGATE_SPOT"
    assert len(cloud.control("GET", "/_local/tasks")) >= 2
    assert cloud.control("GET", "/_local/faults") == []


def test_throttling_at_a_rate_hits_that_fraction_of_calls(cloud: Env) -> None:
    arn = cloud.run()["taskArn"]
    ecs = cloud.server.client("ecs", retries={"total_max_attempts": 1})
    cloud.control("POST", "/_local/faults", {"action": "DescribeTasks", "kind": "throttle", "rate": 0.5})

    errors = []
    for _ in range(10):
        try:
            ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])
        except ClientError as error:
            errors.append(
                (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"])
            )

    assert errors == [("ThrottlingException", 400)] * 5
    ecs.list_tasks(cluster=CLUSTER)  # other actions are not throttled
    statuses = [c["status"] for c in cloud.control("GET", "/_local/calls?action=DescribeTasks")]
    assert statuses == [200, 400] * 5


def test_rate_and_times_combine(cloud: Env) -> None:
    ecs = cloud.server.client("ecs", retries={"total_max_attempts": 1})
    cloud.control(
        "POST", "/_local/faults", {"action": "ListClusters", "kind": "throttle", "rate": 0.5, "times": 2}
    )

    outcomes = []
    for _ in range(8):
        try:
            ecs.list_clusters()
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])

    assert outcomes == ["ok", "ThrottlingException"] * 2 + ["ok"] * 4


def test_http_500_on_any_action(cloud: Env) -> None:
    ecs = cloud.server.client("ecs", retries={"total_max_attempts": 1})
    cloud.control("POST", "/_local/faults", {"action": "*", "kind": "http_500", "times": 1})

    with pytest.raises(ClientError) as raised:
        ecs.list_clusters()
    ecs.list_clusters()

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert raised.value.response["Error"]["Code"] == "ServerException"
    assert [c["status"] for c in cloud.control("GET", "/_local/calls?action=ListClusters")] == [500, 200]


def test_ec2_launch_type_and_asg_capacity_provider_need_no_container_instances(cloud: Env) -> None:
    on_ec2 = cloud.run(launchType="EC2")
    on_asg = cloud.run(capacityProviderStrategy=[{"capacityProvider": ASG_PROVIDER, "weight": 1}])
    by_default = cloud.run()

    assert (on_ec2["launchType"], on_ec2.get("capacityProviderName")) == ("EC2", None)
    assert (on_asg["launchType"], on_asg["capacityProviderName"]) == ("EC2", ASG_PROVIDER)
    assert (by_default["launchType"], by_default["capacityProviderName"]) == ("FARGATE", "FARGATE")
    assert cloud.wait(on_asg["taskArn"], "RUNNING")["launchType"] == "EC2"
    with pytest.raises(ClientError, match="Specify either Launch Type or Capacity Provider Strategy"):
        cloud.run(
            launchType="EC2", capacityProviderStrategy=[{"capacityProvider": ASG_PROVIDER, "weight": 1}]
        )


def test_calls_record_describe_tasks_with_their_tasks(cloud: Env) -> None:
    since = time.time()
    arns = [cloud.run()["taskArn"] for _ in range(3)]

    cloud.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)
    cloud.ecs.describe_tasks(cluster=CLUSTER, tasks=arns[:1])

    calls = cloud.control("GET", f"/_local/calls?action=DescribeTasks&since={since}")
    assert [(c["service"], c["action"], c["tasks"], c["status"]) for c in calls] == [
        ("ecs", "DescribeTasks", 3, 200),
        ("ecs", "DescribeTasks", 1, 200),
    ]
    assert [c["task_arns"] for c in calls] == [arns, arns[:1]]
    assert all(since <= c["t"] <= time.time() for c in calls)
    assert cloud.control("GET", "/_local/stats") == {"ecs.RunTask": 3, "ecs.DescribeTasks": 2}


def test_local_reset_forgets_rules_faults_calls_and_tokens_but_not_moto_state(cloud: Env) -> None:
    cloud.scenario({"family": "job"}, exit_code=9)
    cloud.control("POST", "/_local/faults", {"action": "ListServices", "kind": "http_500"})
    first = cloud.run(clientToken="reset-token")["taskArn"]

    cloud.control("POST", "/_local/reset")

    assert cloud.control("GET", "/_local/scenarios") == []
    assert cloud.control("GET", "/_local/faults") == []
    assert cloud.control("GET", "/_local/calls") == [] and cloud.control("GET", "/_local/stats") == {}
    again = cloud.run(clientToken="reset-token")["taskArn"]
    assert again != first
    assert cloud.local_task(again)["scenario"]["exit_code"] == 0
    assert cloud.describe(first)["taskArn"] == first  # moto still knows the task


def test_control_api_rejects_what_it_does_not_understand(cloud: Env) -> None:
    for path, body in [
        ("/_local/scenarios", {"match": {"familly": "job"}, "scenario": {}}),
        ("/_local/scenarios", {"match": {}, "scenario": {"duration": "long"}}),
        ("/_local/faults", {"action": "DescribeTasks", "kind": "failure"}),
        ("/_local/faults", {"kind": "throttle", "rate": 2}),
    ]:
        with pytest.raises(urllib.error.HTTPError) as raised:
            cloud.control("POST", path, body)
        assert raised.value.code == 400


def test_moto_reset_drops_the_simulated_tasks(tmp_path: Path) -> None:
    """On a server of its own, since moto's reset also drops the seeded cluster and network."""
    server = Server(tmp_path / "server.log")
    try:
        env = _seed(server)
        env.run()
        assert len(env.control("GET", "/_local/tasks")) == 1

        env.control("POST", "/moto-api/reset")

        assert env.control("GET", "/_local/tasks") == []
    finally:
        assert server.stop() == 0


def test_each_state_change_is_an_eventbridge_event_in_the_describe_tasks_shape(cloud: Env) -> None:
    """What ECS sends (source aws.ecs, "ECS Task State Change", the task's DescribeTasks shape with dates as
    ISO strings and a growing ``version``), delivered by an EventBridge rule to SQS; faults drop and
    duplicate events."""
    sqs, events = cloud.server.client("sqs"), cloud.server.client("events")
    queue = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    rule = f"r-{uuid.uuid4().hex[:8]}"
    pattern = {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"]}
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": attributes["QueueArn"]}])
    # Phases shorter than the simulator's 0.1 s tick: each state still gets its event, as of its change.
    phases = {"provisioning": 0.03, "pending": 0.03, "duration": 0.05, "stopping": 0.09}
    cloud.scenario({"family": "job"}, exit_code=4, **phases)
    faults = ({"kind": "drop", "status": "*", "match": {"started_by": "dropped"}},
              {"kind": "duplicate", "match": {"started_by": "doubled"}})  # fmt: skip
    for fault in faults:
        cloud.control("POST", "/_local/event-faults", fault)
    dropped, doubled = cloud.run(startedBy="dropped"), cloud.run(startedBy="doubled")
    try:
        described = cloud.wait(doubled["taskArn"])
        time.sleep(0.5)  # the ticker sends the STOPPED event within 0.1 s
        received: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            received += [json.loads(m["Body"]) for m in batch]
            handles = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            sqs.delete_message_batch(QueueUrl=queue, Entries=handles)
    finally:
        events.remove_targets(Rule=rule, Ids=["q"])
        events.delete_rule(Name=rule)
    mine = [e for e in received if e["detail"]["taskArn"] == doubled["taskArn"]]
    assert not [e for e in received if e["detail"]["taskArn"] == dropped["taskArn"]], "every event dropped"
    timeline = ["PROVISIONING", "PENDING", "RUNNING", *STOPPING_TIMELINE]
    assert [e["detail"]["lastStatus"] for e in mine] == [*timeline, "STOPPED"], "STOPPED sent twice"
    assert [e["detail"]["version"] for e in mine] == [1, 2, 3, 4, 5, 6, 7, 7]
    stopped = mine[-1]
    assert (stopped["source"], stopped["detail-type"]) == ("aws.ecs", "ECS Task State Change")
    detail = stopped["detail"]
    assert detail["stopCode"] == described["stopCode"] and detail["version"] == described["version"]
    exit_codes = [c.get("exitCode") for c in described["containers"]]
    assert [c.get("exitCode") for c in detail["containers"]] == exit_codes
    assert datetime.fromisoformat(detail["stoppedAt"]) == described["stoppedAt"]
    times = [datetime.fromisoformat(e["detail"]["updatedAt"]) for e in mine]
    assert times == sorted(times) and times[-2] == described["stoppedAt"], "each event as of its change"
    assert "tags" not in detail


def test_a_released_message_wakes_a_long_poll_in_flight_as_sqs_does(cloud: Env) -> None:
    """moto looks again once a second; SQS hands a message made visible to a waiting long poll at once
    (``local/aws/sqs_release.py``). The release comes 0.1 s into the other poll: stock moto answers about
    0.9 s later, the local AWS within a few milliseconds (0.5 s allowed for a busy machine)."""
    import threading

    sqs = cloud.server.client("sqs")
    queue = sqs.create_queue(QueueName=f"release-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    delays = []
    for _ in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody="event")
        (held,) = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=30)["Messages"]
        answered: list[float] = []

        def long_poll(answered: list[float] = answered) -> None:
            got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5, VisibilityTimeout=30)
            answered.append(time.monotonic())
            handles = [{"Id": "0", "ReceiptHandle": m["ReceiptHandle"]} for m in got.get("Messages", [])]
            assert handles, "the released message was not received"
            sqs.delete_message_batch(QueueUrl=queue, Entries=handles)

        poll = threading.Thread(target=long_poll)
        poll.start()
        time.sleep(0.1)
        released = time.monotonic()
        entry = {"Id": "0", "ReceiptHandle": held["ReceiptHandle"], "VisibilityTimeout": 0}
        sqs.change_message_visibility_batch(QueueUrl=queue, Entries=[entry])
        poll.join(10)
        delays.append(answered[0] - released)
    assert max(delays) < 0.5, delays
