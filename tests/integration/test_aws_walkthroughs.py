"""The AWS CLI walk-throughs of ``docs/deploy-mwaa.md`` and ``docs/migrate.md``, run as written with the AWS
CLI (``awscli``, in the latest lock) against a local AWS of their own (``AWS_ENDPOINT_URL``), each doc's
blocks in one shell in order, then what they made read back with boto3 and held against the catalog.

What the local AWS cannot be is named per block (``NOT_HERE``): MWAA itself (moto has no MWAA API) and the
VPC stack whose template comes from AWS's documentation, stood in for by the VPC, subnets and security group
its outputs name. Commands another test runs (``make bundle``'s check, ``bundle --check``) are that test's.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecsjobs.build.render import render_requests
from ecsjobs.catalog.loading import load_catalog
from local import legacy
from local.settings import REPO
from tests.support import LocalServer
from tests.test_docs import SHELL

pytestmark = pytest.mark.integration  # the AWS CLI in subprocesses, a server of its own

# A block that cannot run here, found by what it runs, and what takes its place.
VPC_STAND_IN = """\
export VPC_ID=$(aws ec2 create-vpc --cidr-block 10.192.0.0/16 --query Vpc.VpcId --output text)
export SUBNETS=$(for cidr in 10.192.20.0/24 10.192.21.0/24; do
  aws ec2 create-subnet --vpc-id $VPC_ID --cidr-block $cidr --query Subnet.SubnetId --output text
done | paste -sd,)
export SECURITY_GROUP=$(aws ec2 create-security-group --group-name mwaa --description mwaa --vpc-id $VPC_ID \\
  --query GroupId --output text)
"""
ECSJOBS = ".venv/bin/python -m ecsjobs"
NOT_HERE = {
    "aws cloudformation deploy": (
        "the VPC template is AWS's (MWAA User Guide), not this repository's",
        VPC_STAND_IN,
    ),
    "aws mwaa ": (
        "moto has no MWAA API: creating, calling and updating the environment needs an account",
        "",
    ),
    "make bundle": (
        "make bundle's check is tests/integration/test_bundle.py's",
        f"{ECSJOBS} --env prod bundle\n",
    ),
    "bundle --check": ("tests/integration/test_reach.py runs bundle --check --mwaa-subnets", ""),
    # migrate.md
    "import --from aws --check": (
        "this account differs by design (rates, $$.Execution.StartTime): test_import_roundtrip checks it",
        "",
    ),
    "-m local.legacy": ("needs make run's stack; tests/integration/test_import_roundtrip.py seeds it", ""),
}


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """An empty local AWS for the walk-throughs: what they create never meets another test's resources. It
    knows AWS's managed policies, as an account does (the walk-through attaches one)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        log = tmp_path_factory.mktemp("walkthrough-aws") / "server.log"
        server = LocalServer("local.aws", "/_local/stats", log)
    yield server
    server.stop()


def _script(doc: str, tmp: Path) -> tuple[str, list[str]]:
    """The doc's shell blocks in order, those of ``NOT_HERE`` replaced, ``/tmp/`` moved to ``tmp``."""
    blocks, skipped = [], []
    for block in SHELL.findall((REPO / "docs" / doc).read_text()):
        stand_in = next((NOT_HERE[key] for key in NOT_HERE if key in block), None)
        if stand_in:
            skipped.append(stand_in[0])
        text = stand_in[1] if stand_in else block
        blocks.append(text.replace("/tmp/", f"{tmp}/"))
    return "set -euo pipefail\n" + "\n".join(blocks), skipped


def _run(
    doc: str, account: LocalServer, tmp: Path, **env: str
) -> tuple[subprocess.CompletedProcess, list[str]]:
    script, skipped = _script(doc, tmp)
    for name in (
        ".venv",
        "plugins",
    ):  # the docs run from a clone's root: .venv/bin/python, PYTHONPATH=plugins
        (tmp / name).symlink_to(REPO / name)
    environment = {
        **os.environ,
        "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "AWS_ENDPOINT_URL": account.url,
        "AWS_ACCESS_KEY_ID": "walkthrough",
        "AWS_SECRET_ACCESS_KEY": "walkthrough",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
        **env,
    }
    environment.pop("AWS_PROFILE", None)
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp, env=environment, capture_output=True, text=True, timeout=600
    )
    return done, skipped


def test_the_mwaa_walkthrough_sets_up_what_the_catalog_names(account: LocalServer, tmp_path: Path):
    done, skipped = _run("deploy-mwaa.md", account, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(skipped) == 7, skipped  # the VPC stack, make bundle, bundle --check, four blocks of MWAA calls

    prod = load_catalog(REPO / "config", "prod")
    env = prod.environment
    ecs, logs, iam, s3 = (account.client(s) for s in ("ecs", "logs", "iam", "s3"))
    (cluster,) = ecs.describe_clusters(clusters=[env.cluster])["clusters"]
    assert cluster["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    (entry,) = render_requests(prod.jobs["data_processor"], env, prod.environment_name, legacy.REFERENCE, {})
    request = entry["request"]
    definition = ecs.describe_task_definition(taskDefinition=request["taskDefinition"])["taskDefinition"]
    containers = {c["name"] for c in definition["containerDefinitions"]}
    assert {o["name"] for o in request["overrides"]["containerOverrides"]} <= containers, (
        "the job's container"
    )
    assert request["cluster"] == env.cluster
    groups = {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}
    assert {"/ecs/data-processor", env.audit_log_group} <= groups

    bucket = f"airflow-batch-jobs-{account.client('sts').get_caller_identity()['Account']}"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {"plugins.zip", "requirements.txt", "startup.sh", "dags/ecs_jobs.py"} <= keys
    generated = json.loads((tmp_path / "dist" / "iam-policy.json").read_text())
    put = iam.get_role_policy(RoleName="mwaa-batch-jobs-execution", PolicyName="ecs-batch-jobs")
    assert put["PolicyDocument"] == generated
    secret = account.client("secretsmanager").get_secret_value(
        SecretId="airflow/connections/slack_api_default"
    )
    assert json.loads(secret["SecretString"])["conn_type"] == "slack"


def test_the_migration_export_imports_as_the_account_does(account: LocalServer, tmp_path: Path):
    """The docs' export of an account (the shipped catalog as it ran before, ``local.legacy``, and a Lambda)
    imported from its files writes the job files that the import from the account itself writes."""
    prefix = "old-"
    legacy.seed(load_catalog(REPO / "config", "local"), account.client, prefix)
    _create_lambda(account, "run-report")
    from_files, from_account = _catalog(tmp_path / "files"), _catalog(tmp_path / "account")

    done, skipped = _run("migrate.md", account, tmp_path, ECSJOBS_CONFIG_DIR=str(from_files))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(skipped) == 2, skipped  # the check, which differs by design, and the make run try-out
    direct = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", "ecsjobs", "--env", "prod", "import", "--from", "aws"],
        cwd=tmp_path,
        env={
            **os.environ,
            "AWS_ENDPOINT_URL": account.url,
            "ECSJOBS_CONFIG_DIR": str(from_account),
            "AWS_ACCESS_KEY_ID": "walkthrough",
            "AWS_SECRET_ACCESS_KEY": "walkthrough",
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )

    exported = sorted(p.name for p in (tmp_path / "aws").iterdir())
    assert "rules.json" in exported and "run-report.lambda.json" in exported, exported
    assert sum(name.endswith(".state-machine.json") for name in exported) == 4, exported
    written = {p.name: p.read_text() for p in (from_files / "jobs").glob("*.yaml")}
    expected = {p.name: p.read_text() for p in (from_account / "jobs").glob("*.yaml")}
    assert len(written) == 14, (sorted(written), done.stdout[-2000:], done.stderr[-2000:])
    assert written == expected, direct.stdout[-2000:]


def _catalog(root: Path) -> Path:
    """A config folder of the shipped environments, defaults and prices, and no jobs: the import's target."""
    shutil.copytree(REPO / "config" / "environments", root / "environments")
    for name in ("defaults.yaml", "prices.yaml"):
        shutil.copy(REPO / "config" / name, root / name)
    (root / "jobs").mkdir()
    return root


def _create_lambda(account: LocalServer, name: str) -> None:
    role = account.client("iam").create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    account.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )
