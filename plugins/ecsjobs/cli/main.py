"""``python -m ecsjobs``: check, list and dry-run the catalog without an Airflow deployment.

- ``validate [PATH]``: every problem of every file, exit 1 if any;
- ``list``: jobs, their schedule in words, next fire times, launch types and steps;
- ``render JOB --date D [--param k=v ...]``: the exact RunTask request(s) each step would send, as JSON;
- ``sync-monitoring [--dry-run]``: create, update or prune the jobs' CloudWatch alarms, dashboard and saved
  Logs Insights queries (``ecsjobs.deploy.monitoring``); the dry run prints the plan only;
- ``schema [--check]``: (re)generate the JSON Schemas editors use (``config/schema/``);
- ``bundle [--out DIR] [--check] [--mwaa-subnets A,B]``: build the Amazon MWAA deployment (``dist/mwaa/``),
  optionally checked as MWAA would install and parse it (``ecsjobs.deploy.bundle``) and whether MWAA's subnets
  reach what the steps call (``ecsjobs.deploy.reach``); environment ``--env``, default ``prod``;
- ``iam-policy [--out FILE]``: the least-privilege policy of the MWAA execution role for the catalog
  (``ecsjobs.deploy.iam``); environment ``--env``, default ``prod``;
- ``import --from aws|file [PATH ...] [--check]``: EventBridge rules, Scheduler schedules and Step Functions
  state machines that run ECS tasks, as job files with a report of what mapped exactly, approximately or
  needs a person; ``--check`` compares them with the catalog instead (``ecsjobs.importer``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecsjobs.catalog.loading import Catalog, config_dir, environment_problems, load_catalog
from ecsjobs.catalog.prices import PRICES_FILE
from ecsjobs.catalog.problems import CatalogError, report
from ecsjobs.catalog.schema import schema_dir, schemas, write_schemas
from ecsjobs.errors import EcsJobsError
from ecsjobs.reporting.cost import pricing_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecsjobs", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="config folder (default: $ECSJOBS_CONFIG_DIR or config/)")
    parser.add_argument("--env", help="environment (default: $ECSJOBS_ENV or local)")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="report every problem of the catalog")
    validate.add_argument("path", nargs="?", type=Path, help="config folder to check")
    commands.add_parser("list", help="jobs, schedules, next fire times, launch types and steps")
    render = commands.add_parser("render", help="the RunTask requests of a job for one logical date")
    render.add_argument("job")
    render.add_argument("--date", required=True, help="logical date, e.g. 2026-03-01 or 2026-03-01T02:00:00Z")
    render.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a run parameter")
    monitoring = commands.add_parser(
        "sync-monitoring", help="sync the jobs' CloudWatch alarms, dashboard and saved queries"
    )
    monitoring.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    schema = commands.add_parser("schema", help="regenerate config/schema/*.schema.json")
    schema.add_argument(
        "--check", action="store_true", help="only check that the committed files are current"
    )
    bundle = commands.add_parser("bundle", help="build the Amazon MWAA bundle (--env: prod)")
    bundle.add_argument("--out", type=Path, default=Path("dist/mwaa"), help="folder (default: dist/mwaa)")
    bundle.add_argument(
        "--check", action="store_true", help="install and parse it as MWAA would (needs the repository's uv)"
    )
    bundle.add_argument(
        "--mwaa-subnets",
        type=lambda text: [part for part in text.split(",") if part],
        metavar="SUBNET,SUBNET",
        help="also check through AWS (read-only) that MWAA's subnets reach ECS, CloudWatch, SQS and Slack",
    )
    iam_policy = commands.add_parser("iam-policy", help="the MWAA execution role's policy (--env: prod)")
    iam_policy.add_argument("--out", type=Path, help="write it to this file instead of printing it")
    iam_policy.add_argument(
        "--importer", action="store_true", help="instead, the read-only policy of `import --from aws`"
    )
    importer = commands.add_parser(
        "import", help="EventBridge rules, Scheduler schedules and state machines running ECS tasks, as jobs"
    )
    importer.add_argument(
        "--from", dest="origin", choices=["aws", "file"], required=True, help="the account, or the CLI's JSON"
    )
    importer.add_argument("paths", nargs="*", type=Path, help="with --from file: JSON files or folders")
    importer.add_argument("--region", help="with --from aws: the region (default: the environment's)")
    importer.add_argument("--prefix", help="with --from aws: only rules and schedules named so")
    importer.add_argument("--out", type=Path, help="folder of the job files (default: the catalog's jobs/)")
    importer.add_argument("--force", action="store_true", help="overwrite job files a person edited")
    importer.add_argument("--json", action="store_true", help="print the report as JSON")
    importer.add_argument(
        "--check", action="store_true", help="write nothing: compare each source with its catalog job"
    )
    fleet = commands.add_parser("report", help="per job: runs, outcomes, durations, Spot, cost, and advice")
    fleet.add_argument("--days", type=int, default=30, help="the window, ending now (default: 30)")
    fleet.add_argument("--job", help="only this job")
    fleet.add_argument("--json", action="store_true", help="print the report as JSON")
    prices = commands.add_parser("prices", help="refresh config/prices.yaml from the AWS Price List")
    prices.add_argument("--refresh", action="store_true", required=True, help="read the price list, rewrite")
    prices.add_argument("--region", action="append", required=True, help="a region to refresh (repeatable)")
    prices.add_argument(
        "--offer", help="the AmazonECS bulk offer file (path or URL; default: AWS's URL for the region)"
    )
    args = parser.parse_args(argv)

    directory = args.config or config_dir()
    try:
        if args.command == "validate":
            return _validate(args.path or directory, args.env)
        if args.command == "list":
            return _list(load_catalog(directory, args.env))
        if args.command == "render":
            return _render(load_catalog(directory, args.env), args.job, args.date, args.param)
        if args.command == "sync-monitoring":
            from ecsjobs.deploy.monitoring.apply import sync_command

            return sync_command(load_catalog(directory, args.env), args.dry_run)
        if args.command == "bundle":
            from ecsjobs.deploy.bundle import bundle_command

            catalog = load_catalog(directory, args.env or "prod")
            return bundle_command(catalog, directory, args.out, args.check, args.mwaa_subnets)
        if args.command == "iam-policy":
            from ecsjobs.deploy.iam import policy_command

            return policy_command(load_catalog(directory, args.env or "prod"), args.out, args.importer)
        if args.command == "import":
            return _import(directory, args)
        if args.command == "report":
            from ecsjobs.reporting.fleet import report_command

            if args.days < 1:
                raise UsageError("--days must be 1 or more")
            return report_command(load_catalog(directory, args.env), args.days, args.job, args.json)
        if args.command == "prices":
            from ecsjobs.cli.prices import refresh_command

            return refresh_command(directory, args.region, args.offer)
        return _schema(directory, args.check)
    except CatalogError as err:
        print(err, file=sys.stderr)
        return 1
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


class UsageError(EcsJobsError):
    """A mistake on the command line."""


def _validate(directory: Path, environment: str | None) -> int:
    """Every file's problems: the environments (all of them), the jobs, then Airflow's own checks of each
    job's DAG, which ``validate`` runs by building the DAGs as the DAG processor does."""
    from ecsjobs.build.factory import build_dags

    broken = environment_problems(directory)
    try:
        catalog = load_catalog(directory, environment)
    except CatalogError as err:
        for problem in err.problems:  # the environment in use was checked above already
            if problem not in broken.get(problem.path, []):
                broken.setdefault(problem.path, []).append(problem)
        catalog = None
    if catalog is not None:
        build_dags(catalog, register=False)
        broken |= catalog.broken
    if broken:
        print(report(broken), file=sys.stderr)
        count = sum(len(problems) for problems in broken.values())
        print(f"{count} problem(s) in {len(broken)} file(s)", file=sys.stderr)
        return 1
    assert catalog is not None  # a catalog that does not load has problems
    print(f"{len(catalog.jobs)} job(s) valid in environment {catalog.environment_name!r}")
    if pricing_for(catalog.prices, catalog.environment) is None:
        region = catalog.environment.region
        print(f"note: no prices for {region} in {directory / PRICES_FILE}: runs are not costed")
    return 0


def _import(directory: Path, args: argparse.Namespace) -> int:
    from ecsjobs.importer import import_command

    if args.origin == "file" and not args.paths:
        raise UsageError("--from file needs the JSON files (or folders) to read")
    if args.origin == "aws" and args.paths:
        raise UsageError("--from aws reads the account: give no files")
    paths = args.paths if args.origin == "file" else None
    out = args.out or directory / "jobs"
    catalog = load_catalog(directory, args.env)
    return import_command(
        catalog, directory, paths, args.region, args.prefix, out, args.force, args.json, args.check
    )


def _list(catalog: Catalog) -> int:
    from ecsjobs.catalog.models import step_order
    from ecsjobs.catalog.schedules import describe_schedule, next_fire_times

    now = datetime.now(UTC)
    for job_id, spec in sorted(catalog.jobs.items()):
        job, tz = spec.job, spec.job.timezone or "UTC"
        fires = next_fire_times(job.schedule, tz, now, 3) if job.schedule else []
        order = step_order({name: step.depends_on for name, step in spec.steps.items()})
        launches = sorted({step.launch for step in spec.steps.values()})
        print(f"{job_id}: {job.description.strip().splitlines()[0]}")
        print(f"  schedule: {describe_schedule(job.schedule, tz) if job.schedule else 'manual only'}")
        if fires:
            print(f"  next: {', '.join(f.isoformat() for f in fires)}")
        print(f"  launch: {', '.join(launches)}")
        fan_out = f"  (once per combination of {', '.join(job.matrix)})" if job.matrix else ""
        print(f"  steps: {' -> '.join(order)}{fan_out}")
    for path in catalog.broken:
        print(f"not listed, broken: {path} (see `validate`)", file=sys.stderr)
    return 0


def _render(catalog: Catalog, job_id: str, date: str, raw_params: list[str]) -> int:
    from ecsjobs.build.render import render_requests

    if job_id not in catalog.jobs:
        broken = [p for p in catalog.broken if p.stem == job_id]
        if broken:
            raise CatalogError(catalog.broken[broken[0]])
        raise UsageError(f"no job {job_id!r}; known: {', '.join(sorted(catalog.jobs))}")
    try:
        logical_date = datetime.fromisoformat(date.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--date {date!r}: expected an ISO date like 2026-03-01 or 2026-03-01T02:00:00Z"
        ) from None
    params = dict(_param(raw) for raw in raw_params)
    try:
        requests = render_requests(
            catalog.jobs[job_id], catalog.environment, catalog.environment_name, logical_date, params
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    print(json.dumps(requests, indent=2, default=str))
    return 0


def _param(raw: str) -> tuple[str, Any]:
    name, sep, value = raw.partition("=")
    if not sep or not name:
        raise UsageError(f"--param {raw!r}: expected NAME=VALUE")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def _schema(directory: Path, check: bool) -> int:
    if check:
        stale = [name for name, text in schemas().items() if _read(schema_dir(directory) / name) != text]
        if stale:
            print(
                f"stale JSON Schema(s): {', '.join(stale)}; run `python -m ecsjobs schema`", file=sys.stderr
            )
            return 1
        print("JSON Schemas are current")
        return 0
    for path in write_schemas(schema_dir(directory)):
        print(f"wrote {path}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None
