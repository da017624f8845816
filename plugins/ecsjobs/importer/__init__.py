"""``python -m ecsjobs import``: EventBridge rules, Scheduler schedules and Step Functions state machines that
run ECS tasks, as job files.

``sources`` reads them (an account, read-only, or the AWS CLI's JSON), ``mapping`` (with ``state_machines``)
turns each into a job and notes what mapped exactly, approximately or needs a person, ``jobfiles`` writes them
without overwriting a person's edits, ``check`` compares them with the catalog; here every file is validated
as the catalog loads it, and the report printed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecsjobs.aws import describe_aws_error
from ecsjobs.build.factory import build_dags
from ecsjobs.catalog.loading import Catalog, JobSpec, load_catalog
from ecsjobs.importer import jobfiles, sources
from ecsjobs.importer.imported import Imported, pause_for_review
from ecsjobs.importer.limits import limit_differences
from ecsjobs.importer.mapping import map_source


def import_command(
    catalog: Catalog,
    directory: Path,
    paths: list[Path] | None,
    region: str | None,
    prefix: str | None,
    out: Path,
    force: bool,
    as_json: bool,
    check: bool = False,
    now: datetime | None = None,
) -> int:
    """Read the sources (``paths``, or the account when None), write the jobs, print the report; 1 if any
    job file does not validate or a source cannot be read. With ``check``, write nothing: compare each
    source with its job in the catalog instead (``ecsjobs.importer.check``), 1 on any difference."""
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the hook's log lines: stdout is the report
            found = sources.from_files(paths) if paths is not None else _from_account(catalog, region, prefix)
    except sources.SourceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as err:
        print(f"error: {describe_aws_error(err)}", file=sys.stderr)
        return 1
    now = now or datetime.now(UTC)
    imported = [_mapped(s, catalog, found.lambdas, now.date()) for s in found.items]
    if check:
        return _check(imported, catalog, now)
    _dedupe_names(imported)
    jobs = [item for item in imported if item.job is not None]
    problems, staged = _validate(jobs, directory, catalog.environment_name)
    for item in jobs:
        if item.name in staged:
            _flag_added_limits(item, staged[item.name])
    written = {item.name: jobfiles.write(item, out, force) for item in jobs if item.name not in problems}
    if as_json:
        print(json.dumps(_json(imported, written, problems), indent=2, default=str))
    else:
        print(_text(imported, written, problems))
    return 1 if problems or any(item.failed for item in imported) else 0


def _mapped(
    source: sources.Source, catalog: Catalog, lambdas: dict[str, dict[str, str]], today: date
) -> Imported:
    """The source's job; a source the importer cannot map is reported with why, and the others go on."""
    try:
        return map_source(source, catalog.environment, lambdas, today)
    except Exception as err:  # noqa: BLE001 - one odd source must not stop an account's import
        failed = Imported(source, source.name, None)
        failed.failed = str(err) if isinstance(err, sources.SourceError) else f"{type(err).__name__}: {err}"
        return failed


def _check(imported: list[Imported], catalog: Catalog, now: datetime) -> int:
    from ecsjobs.importer.check import FIRES, compare, disable_command

    lines, equal = [], []
    for item in imported:
        title = f"{item.source.kind.replace('_', ' ')} {item.source.name}"
        if item.skipped:
            lines.append(f"skipped  {title}: {item.skipped}")
            continue
        if item.failed:
            lines.append(f"DIFFERS  {title}: the importer cannot map it ({item.failed})")
            continue
        try:
            result = compare(item.source, catalog, now)
        except Exception as err:  # noqa: BLE001 - one odd source must not stop the check of the others
            lines.append(f"DIFFERS  {title}: it cannot be compared ({type(err).__name__}: {err})")
            continue
        if result.equal:
            equal.append(item.source)
            lines.append(f"equal    {title} = job {result.job}: next {FIRES} fire times, RunTask request")
        else:
            lines.append(f"DIFFERS  {title} = job {result.job or '(none)'}")
            lines += [f"    {difference}" for difference in result.differences]
        lines += [f"    note: {note}" for note in result.notes]
    differing = sum(not item.skipped for item in imported) - len(equal)
    lines.append(f"{len(equal)} equal, {differing} differ, {sum(bool(i.skipped) for i in imported)} skipped")
    if equal:
        lines.append("Once their jobs run in Airflow, turn these sources off (printed, not run):")
        lines += [f"  {disable_command(source)}" for source in equal]
    print("\n".join(lines))
    return 1 if differing else 0


def _from_account(catalog: Catalog, region: str | None, prefix: str | None) -> sources.Sources:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    env = catalog.environment

    def client(kind: str) -> Any:  # through the hook: the connection's credentials and endpoint_url apply
        return AwsBaseHook(
            aws_conn_id=env.aws_conn_id, client_type=kind, region_name=region or env.region
        ).get_conn()

    return sources.from_aws(client, prefix)


def _dedupe_names(imported: list[Imported]) -> None:
    """A rule and a schedule of the same name: the schedule's job gets a suffix."""
    seen: set[str] = set()
    for item in imported:
        if item.job is None:
            continue
        if item.name in seen:
            item.name = f"{item.name}_{item.source.kind}"
            item.note("approximated", "Name", f"another source is named {item.source.name}: job {item.name}")
        seen.add(item.name)


def _flag_added_limits(item: Imported, spec: JobSpec) -> None:
    """A retry or timeout the catalog's defaults add to what the source never retried or stopped."""
    for difference in limit_differences(item.source, spec):
        what, _, detail = difference.partition(": ")
        item.note(
            "review",
            what.replace("step ", "").replace(" ", "."),
            f"{detail}; the catalog's defaults add it: set the step's value to the source's, or keep it",
        )
    pause_for_review(item)


def _validate(
    jobs: list[Imported], directory: Path, environment: str
) -> tuple[dict[str, list[str]], dict[str, JobSpec]]:
    """The catalog's own check of each imported job, beside the catalog's defaults and environment: the
    problems by job, and the jobs that load."""
    with tempfile.TemporaryDirectory() as staging:
        root = Path(staging)
        shutil.copytree(directory / "environments", root / "environments")
        if (directory / "defaults.yaml").exists():
            shutil.copy(directory / "defaults.yaml", root / "defaults.yaml")
        (root / "jobs").mkdir()
        for item in jobs:
            (root / "jobs" / f"{item.name}.yaml").write_text(jobfiles.render(item), encoding="utf-8")
        staged = load_catalog(root, environment)
        build_dags(staged, register=False)  # Airflow's own checks, as validate runs them
        problems = {
            path.stem: [str(p).replace(str(root), "<import>") for p in found]
            for path, found in staged.broken.items()
        }
        return problems, staged.jobs


def _text(
    imported: list[Imported], written: dict[str, jobfiles.Written], problems: dict[str, list[str]]
) -> str:
    lines = []
    for item in imported:
        title = f"{item.source.kind.replace('_', ' ')} {item.source.name}"
        if item.skipped:
            lines.append(f"skipped  {title}: {item.skipped}")
            continue
        if item.failed:
            lines.append(f"FAILED   {title}: not imported: {item.failed}")
            continue
        result = written.get(item.name)
        counts = {
            level: sum(n.level == level for n in item.notes) for level in ("exact", "approximated", "review")
        }
        outcome = result.outcome if result else "NOT WRITTEN (invalid)"
        lines.append(
            f"{outcome:<8} {title} -> {result.path if result else item.name}: {counts['exact']} exact, "
            f"{counts['approximated']} approximated, {counts['review']} to review"
        )
        lines += [
            f"    {note.level}: {note.what}: {note.detail}" for note in item.notes if note.level != "exact"
        ]
        lines += [f"    invalid: {problem}" for problem in problems.get(item.name, [])]
        if result and result.diff:
            lines.append(
                "    a person edited it; the import would change:"
                if result.outcome == "kept (edited)"
                else "    overwritten (--force):"
            )
            lines += [f"    {line}" for line in result.diff.splitlines()]
    jobs = sum(item.job is not None for item in imported)
    review = sum(item.needs_review for item in imported if item.job is not None)
    skipped = sum(bool(item.skipped) for item in imported)
    failed = [item for item in imported if item.failed]
    summary = f"{len(imported)} sources: {jobs} jobs, {review} to review, {skipped} skipped"
    lines.append(summary + (f", {len(failed)} not imported (above)" if failed else ""))
    return "\n".join(lines)


def _json(
    imported: list[Imported], written: dict[str, jobfiles.Written], problems: dict[str, list[str]]
) -> list[dict[str, Any]]:
    result = []
    for item in imported:
        entry: dict[str, Any] = {
            "kind": item.source.kind,
            "name": item.source.name,
            "arn": item.source.arn,
            "job": None if item.skipped or item.failed else item.name,
            "skipped": item.skipped,
            "failed": item.failed,
            "notes": [asdict(note) for note in item.notes],
            "problems": problems.get(item.name, []),
        }
        if item.name in written and not item.skipped:
            entry.update(
                file=str(written[item.name].path),
                outcome=written[item.name].outcome,
                diff=written[item.name].diff,
            )
        result.append(entry)
    return result
