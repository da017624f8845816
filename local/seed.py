"""Create in the local AWS what the catalog expects to exist: network, cluster, task definitions, log groups,
and the task events queue and rule (as ``python -m ecsjobs sync-monitoring`` would).

On real AWS these belong to the team's infrastructure code; locally they are derived from the catalog so
that every job can run. Safe to run twice. Usage: ``python -m local.seed [--endpoint URL]``.
"""

from __future__ import annotations

import argparse

import boto3
from botocore.exceptions import ClientError

from ecsjobs.build.factory import DEFAULT_LOG_STREAM_PREFIX
from ecsjobs.catalog.loading import Catalog, load_catalog
from ecsjobs.deploy import event_route
from local.aws.ids import CUSTOM_ID_TAG
from local.settings import LOCAL_AWS_PORT

ACCOUNT = "123456789012"
TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/batch-job-task"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole"
# The default VPC is 172.31.0.0/16 with moto's default subnets in the low /20s; ours sit above them.
SUBNET_CIDRS = ("172.31.192.0/20", "172.31.208.0/20", "172.31.224.0/20", "172.31.240.0/20")


def seed(catalog: Catalog, endpoint_url: str) -> None:
    env = catalog.environment
    session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=env.region)
    clients = {
        name: session.client(name, endpoint_url=endpoint_url)
        for name in ("ec2", "ecs", "logs", "autoscaling", "sqs", "events")
    }
    networks = [env, *env.networks.values()]
    subnets = list(dict.fromkeys(s for n in networks for s in n.subnets or []))
    _network(
        clients["ec2"], subnets, list(dict.fromkeys(g for n in networks for g in n.security_groups or []))
    )
    providers = ["FARGATE", "FARGATE_SPOT", _asg_capacity_provider(clients, env.ec2_spot_capacity_provider)]
    if env.ec2_capacity_provider:
        providers.append(_asg_capacity_provider(clients, env.ec2_capacity_provider))
    clients["ecs"].create_cluster(
        clusterName=env.cluster,
        capacityProviders=providers,
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
    )
    log_groups = {env.audit_log_group}
    for family, (containers, revisions) in _families(catalog).items():
        existing = clients["ecs"].list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
        for _ in range(revisions - len(existing)):  # pinned family:revision steps need that revision to exist
            _register(clients["ecs"], env.region, family, containers)
        log_groups.update(group for group, _ in containers.values())
    existing = {g["logGroupName"] for g in clients["logs"].describe_log_groups()["logGroups"]}
    for group in sorted(log_groups - existing):
        clients["logs"].create_log_group(logGroupName=group)
    if env.task_events:
        for action, kind, request in event_route.plan(
            env, {}, clients["sqs"], clients["events"], clients["ecs"]
        ):
            if action != "unchanged":
                event_route.apply(kind, request, clients["sqs"], clients["events"])


def _register(ecs, region: str, family: str, containers: dict[str, tuple[str, str]]) -> None:
    ecs.register_task_definition(
        family=family,
        taskRoleArn=TASK_ROLE,
        executionRoleArn=EXECUTION_ROLE,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE", "EC2"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[
            {
                "name": name,
                "image": f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{family}:latest",
                "essential": True,
                "memory": 2048,  # container-level memory: moto fails on Fargate definitions without it
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": group,
                        "awslogs-region": region,
                        "awslogs-stream-prefix": prefix,
                    },
                },
            }
            for name, (group, prefix) in containers.items()
        ],
    )


def _families(catalog: Catalog) -> dict[str, tuple[dict[str, tuple[str, str]], int]]:
    """Family -> (container -> (awslogs group, stream prefix), revisions needed), as the steps use them."""
    families: dict[str, tuple[dict[str, tuple[str, str]], int]] = {}
    for spec in catalog.jobs.values():
        for step in spec.steps.values():
            containers, revisions = families.get(step.family, ({}, 1))
            group = step.log_group or f"/ecs/{step.family}"
            containers[step.container] = (group, step.log_stream_prefix or DEFAULT_LOG_STREAM_PREFIX)
            pinned = int(step.task_definition.partition(":")[2] or 1)
            families[step.family] = (containers, max(revisions, pinned))
    return families


def _network(ec2, subnets: list[str], security_groups: list[str]) -> None:
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    existing = {s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}
    for i, subnet_id in enumerate(subnets):
        if subnet_id not in existing:
            ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=SUBNET_CIDRS[i % len(SUBNET_CIDRS)],
                AvailabilityZone=zones[i % len(zones)],
                TagSpecifications=[
                    {"ResourceType": "subnet", "Tags": [{"Key": CUSTOM_ID_TAG, "Value": subnet_id}]}
                ],
            )
    existing = {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    for group_id in security_groups:
        if group_id not in existing:
            ec2.create_security_group(
                GroupName=group_id,
                Description="batch jobs (local)",
                VpcId=vpc_id,
                TagSpecifications=[
                    {"ResourceType": "security-group", "Tags": [{"Key": CUSTOM_ID_TAG, "Value": group_id}]}
                ],
            )


def _asg_capacity_provider(clients, name: str) -> str:
    """An EC2 Auto Scaling group capacity provider (the local ECS places its tasks without instances)."""
    try:
        clients["ecs"].describe_capacity_providers(capacityProviders=[name])["capacityProviders"][0]
        return name
    except (ClientError, IndexError):
        pass
    autoscaling = clients["autoscaling"]
    clients["ec2"].create_launch_template(
        LaunchTemplateName=f"{name}-template",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.large"},
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=f"{name}-asg",
        LaunchTemplate={"LaunchTemplateName": f"{name}-template"},
        MinSize=0,
        MaxSize=10,
        AvailabilityZones=["us-east-1a"],
    )
    arn = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{name}-asg"])[
        "AutoScalingGroups"
    ][0]["AutoScalingGroupARN"]
    clients["ecs"].create_capacity_provider(name=name, autoScalingGroupProvider={"autoScalingGroupArn": arn})
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default=f"http://127.0.0.1:{LOCAL_AWS_PORT}", help="local AWS URL")
    args = parser.parse_args()
    seed(load_catalog(), args.endpoint)
    print(f"seeded {args.endpoint}")


if __name__ == "__main__":
    main()
