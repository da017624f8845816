"""Whether an MWAA environment's subnets reach what the steps call: the network part of the bundle check.

MWAA runs the scheduler, workers and triggerer in the environment's private subnets. From there the steps
call ECS, CloudWatch Logs and CloudWatch, read the task events queue from SQS (with ``task_events``) and post
alerts to Slack. A private subnet reaches an AWS service through its route table's default route to a NAT
gateway (or a NAT instance, transit gateway or firewall interface), or through an interface VPC endpoint of
the service with private DNS in its VPC; it reaches Slack, outside AWS, only through the default route. A
default route to an internet gateway does not count: MWAA's subnets are private, their interfaces get no
public IP.

Read-only (DescribeSubnets, DescribeRouteTables, DescribeVpcEndpoints), so it can run before every deployment:
``python -m ecsjobs --env prod bundle --check --mwaa-subnets subnet-a,subnet-b``.
"""

from __future__ import annotations

from typing import Any

from ecsjobs.catalog.environment import Environment

DEFAULT_ROUTE = "0.0.0.0/0"
# Route targets that take a private subnet's traffic out of the VPC (an internet gateway's does not).
EGRESS_TARGETS = ("NatGatewayId", "InstanceId", "TransitGatewayId", "NetworkInterfaceId")


def needed(environment: Environment) -> dict[str, str]:
    """The AWS services (endpoint names) the steps call from MWAA, with what for."""
    services = {
        "ecs": "running and watching the tasks",
        "logs": "the task logs and the audit log",
        "monitoring": "the run metrics",
    }
    if environment.task_events:
        services["sqs"] = f"the task events queue {environment.task_events.queue!r}"
    return services


def problems(environment: Environment, subnets: list[str], ec2: Any) -> list[str]:
    """What each subnet cannot reach (empty: every subnet reaches everything the steps call)."""
    found = []
    for subnet in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]:
        name, vpc = subnet["SubnetId"], subnet["VpcId"]
        if _has_egress(ec2, name, vpc):
            continue
        endpoints = _private_endpoints(ec2, vpc)
        for service, why in needed(environment).items():
            if service not in endpoints:
                found.append(
                    f"subnet {name}: no route to {service} ({why}): add a default route to a NAT gateway, or "
                    f"an interface endpoint com.amazonaws.{environment.region}.{service} with private DNS "
                    f"in {vpc} (docs/deploy-mwaa.md)"
                )
        found.append(f"subnet {name}: no route to Slack (the alerts): it needs a default route to a NAT")
    return found


def _has_egress(ec2: Any, subnet: str, vpc: str) -> bool:
    """Whether the subnet's route table (its own, else the VPC's main one) has a working default route out."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])
    if not tables["RouteTables"]:
        tables = ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
        )
    return any(
        route.get("DestinationCidrBlock") == DEFAULT_ROUTE
        and route.get("State") != "blackhole"
        and any(route.get(target) for target in EGRESS_TARGETS)
        for table in tables["RouteTables"]
        for route in table["Routes"]
    )


def _private_endpoints(ec2: Any, vpc: str) -> set[str]:
    """The services with an available interface endpoint with private DNS in the VPC."""
    described = ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "vpc-endpoint-type", "Values": ["Interface"]}]
    )
    return {
        endpoint["ServiceName"].rsplit(".", 1)[-1]
        for endpoint in described["VpcEndpoints"]
        if endpoint.get("PrivateDnsEnabled") and endpoint.get("State", "").lower() == "available"
    }
