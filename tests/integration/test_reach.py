"""The bundle check's network part (``ecsjobs.deploy.reach``): whether MWAA's subnets reach ECS, CloudWatch,
SQS (with ``task_events``) and Slack, read through EC2's API from the local AWS (moto's VPCs, route tables,
NAT gateways and VPC endpoints), and ``bundle --mwaa-subnets`` as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ecsjobs.catalog.environment import TaskEvents
from ecsjobs.catalog.loading import load_catalog
from ecsjobs.deploy import reach
from local.settings import REPO

pytestmark = pytest.mark.integration  # the local AWS as a server

REGION = "us-east-1"


@pytest.fixture
def ec2(aws) -> Any:
    return aws.client("ec2")


@pytest.fixture
def vpc(ec2) -> str:
    return ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]


def _environment(events: bool) -> Any:
    env = load_catalog(REPO / "config", "local").environment
    return env.model_copy(update={"task_events": TaskEvents(queue="q") if events else None})


def _subnet(ec2, vpc: str, cidr: str) -> str:
    return ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]


def _route_table(ec2, vpc: str, subnet: str, **target: str) -> None:
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    if target:
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", **target)


def _endpoints(ec2, vpc: str, subnet: str, services: list[str], private_dns: bool = True) -> None:
    for service in services:
        ec2.create_vpc_endpoint(
            VpcId=vpc,
            ServiceName=f"com.amazonaws.{REGION}.{service}",
            VpcEndpointType="Interface",
            SubnetIds=[subnet],
            PrivateDnsEnabled=private_dns,
        )


def _unreached(problems: list[str]) -> set[str]:
    return {problem.split(": no route to ", 1)[1].split(" ", 1)[0] for problem in problems}


def test_a_nat_gateway_route_reaches_everything(ec2, vpc):
    public, private = _subnet(ec2, vpc, "10.40.0.0/24"), _subnet(ec2, vpc, "10.40.1.0/24")
    address = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=address)["NatGateway"]["NatGatewayId"]
    _route_table(ec2, vpc, private, NatGatewayId=nat)

    assert reach.problems(_environment(events=True), [private], ec2) == []


def test_without_a_way_out_each_service_and_slack_is_named(ec2, vpc):
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    isolated, via_gateway = _subnet(ec2, vpc, "10.40.2.0/24"), _subnet(ec2, vpc, "10.40.3.0/24")
    _route_table(ec2, vpc, via_gateway, GatewayId=gateway)  # no public IPs in MWAA's subnets: no way out

    found = reach.problems(_environment(events=True), [isolated, via_gateway], ec2)

    assert {p.split(":", 1)[0] for p in found} == {f"subnet {isolated}", f"subnet {via_gateway}"}
    assert _unreached(found) == {"ecs", "logs", "monitoring", "sqs", "Slack"}
    assert any(f"com.amazonaws.{REGION}.sqs" in p and "task events queue 'q'" in p for p in found)


def test_interface_endpoints_reach_their_services_but_not_slack_and_sqs_only_matters_with_task_events(
    ec2, vpc
):
    subnet = _subnet(ec2, vpc, "10.40.4.0/24")
    _route_table(ec2, vpc, subnet)
    _endpoints(ec2, vpc, subnet, ["ecs", "logs", "monitoring"])

    assert _unreached(reach.problems(_environment(events=False), [subnet], ec2)) == {"Slack"}
    assert _unreached(reach.problems(_environment(events=True), [subnet], ec2)) == {"sqs", "Slack"}
    _endpoints(ec2, vpc, subnet, ["sqs"], private_dns=False)  # the SDK's default host would not resolve to it
    assert _unreached(reach.problems(_environment(events=True), [subnet], ec2)) == {"sqs", "Slack"}
    _endpoints(ec2, vpc, subnet, ["sqs"])
    assert _unreached(reach.problems(_environment(events=True), [subnet], ec2)) == {"Slack"}


def test_the_bundle_command_reports_what_the_subnets_cannot_reach(ec2, vpc, tmp_path: Path):
    subnet = _subnet(ec2, vpc, "10.40.5.0/24")
    command = [sys.executable, "-m", "ecsjobs", "--env", "local", "bundle", "--out", str(tmp_path / "mwaa")]
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*command, *args], capture_output=True, text=True, env=environ, cwd=REPO, timeout=120
        )

    unreached = run("--mwaa-subnets", subnet)
    assert unreached.returncode == 1
    queue = "the task events queue 'batch-jobs-task-events'"
    assert f"subnet {subnet}: no route to sqs ({queue})" in unreached.stderr
    assert "Traceback" not in unreached.stderr and (tmp_path / "mwaa" / "plugins.zip").exists()

    unknown = run("--mwaa-subnets", "subnet-0000000000000dead")
    assert unknown.returncode == 1
    assert "error: checking the MWAA subnets: AWS DescribeSubnets:" in unknown.stderr
    assert "Traceback" not in unknown.stderr
