"""The Jobs page in the Airflow UI: every job of the catalog with its schedule as written and in words, its
next three fire times, launch, owner and tags, how its last 30 days went and what they cost, a link to its
DAG, and a chart of its last runs' duration and cost.

A FastAPI app that the api-server mounts under ``/ecsjobs`` and the UI shows as the "ECS jobs" page
(``ecsjobs_plugin``, which imports this module on the page's first request only), behind Airflow's own
authentication: the session's token, and only the DAGs the user
may read. It reads the catalog and Airflow's metadata DB (the jobs' DAG runs, and each step's ``ecs_run``
XCom, which is its audit record), in two queries whatever the number of jobs, and never calls AWS. A step's
XCom is its last try's record: the costs here leave out tries lost before it, which ``python -m ecsjobs
report`` counts from the audit log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import jinja2
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from ecsjobs.catalog.loading import Catalog, load_catalog
from ecsjobs.catalog.schedules import describe_schedule, next_fire_times

WINDOW = timedelta(days=30)
CHART_RUNS = 20
NEXT_FIRES = 3

app = FastAPI(title="ECS jobs", docs_url=None, redoc_url=None, openapi_url=None)
_template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    files("ecsjobs.ui").joinpath("jobs_page.html").read_text(encoding="utf-8")
)


@dataclass
class Run:
    """One DAG run of a job, with its steps' records (the last try of each)."""

    run_id: str
    state: str
    start: datetime | None
    end: datetime | None
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        return (self.end - self.start).total_seconds() if self.start and self.end else None

    @property
    def cost(self) -> float | None:
        costs = [r["estimated_cost"] for r in self.records if r.get("estimated_cost") is not None]
        return sum(costs) if costs else None

    @property
    def outcome(self) -> str:
        """The run's state, and the outcome class of its first step that did not succeed."""
        failed = [r.get("outcome") for r in self.records if r.get("outcome") not in (None, "succeeded")]
        return f"{self.state}: {str(failed[0]).replace('_', ' ')}" if failed else self.state


@dataclass
class Row:
    job: str
    description: str
    schedule: str
    in_words: str
    next_fires: list[str]
    launch: str
    owner: str
    tags: list[str]
    last_run: str | None
    success_rate: float | None  # of step runs in the window
    cost_per_run: float | None
    cost_per_month: float | None
    durations: list[float]  # seconds, oldest first
    costs: list[float]


def rows(catalog: Catalog, runs: dict[str, list[Run]], now: datetime) -> list[Row]:
    """A row per job; ``runs`` are each job's runs of the window, oldest first."""
    table = []
    for job_id, spec in sorted(catalog.jobs.items()):
        job, tz = spec.job, spec.job.timezone or "UTC"
        history = runs.get(job_id, [])
        finals = [r for run in history for r in run.records if r.get("final")]
        succeeded = sum(r.get("outcome") == "succeeded" for r in finals)
        costed = [run.cost for run in history if run.cost is not None]
        fires = next_fire_times(job.schedule, tz, now, NEXT_FIRES)
        table.append(
            Row(
                job=job_id,
                description=job.description.strip().splitlines()[0],
                schedule=job.schedule or "manual",
                in_words=describe_schedule(job.schedule, tz),
                next_fires=[f"{fire:%Y-%m-%d %H:%M %Z}" for fire in fires],
                launch=", ".join(sorted({step.launch for step in spec.steps.values()})),
                owner=job.owner or "-",
                tags=list(job.tags),
                last_run=history[-1].outcome if history else None,
                success_rate=succeeded / len(finals) if finals else None,
                cost_per_run=sum(costed) / len(costed) if costed else None,
                cost_per_month=sum(costed) * 30 / WINDOW.days if costed else None,
                durations=[run.seconds for run in history[-CHART_RUNS:] if run.seconds is not None],
                costs=[run.cost for run in history[-CHART_RUNS:] if run.cost is not None],
            )
        )
    return table


def history(dag_ids: set[str], since: datetime) -> dict[str, list[Run]]:
    """The jobs' DAG runs since ``since`` with their steps' ``ecs_run`` records: two queries."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    found: dict[str, list[Run]] = {}
    by_key: dict[tuple[str, str], Run] = {}
    with create_session() as session:
        dag_runs = session.execute(
            select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.start_date, DagRun.end_date)
            .where(DagRun.dag_id.in_(dag_ids), DagRun.run_after >= since)
            .order_by(DagRun.run_after)
        ).all()
        for dag_id, run_id, state, start, end in dag_runs:
            run = by_key[dag_id, run_id] = Run(run_id, str(state), start, end)
            found.setdefault(dag_id, []).append(run)
        records = session.execute(
            select(XComModel.dag_id, XComModel.run_id, XComModel.value).where(
                XComModel.key == "ecs_run", XComModel.dag_id.in_(dag_ids), XComModel.timestamp >= since
            )
        ).all()
    for dag_id, run_id, value in records:
        record = json.loads(value) if isinstance(value, str) else value
        if (dag_id, run_id) in by_key and isinstance(record, dict):
            by_key[dag_id, run_id].records.append(record)
    return found


def _points(values: list[float], width: int = 120, height: int = 28) -> str:
    """An SVG polyline's points for ``values``, scaled into the box (the highest at the top)."""
    if not values:
        return ""
    top = max(values) or 1.0
    step = width / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - 2 - v / top * (height - 4):.1f}" for i, v in enumerate(values))


def page(catalog: Catalog, runs: dict[str, list[Run]], now: datetime) -> str:
    return _template.render(
        rows=rows(catalog, runs, now),
        environment=catalog.environment_name,
        now=now.strftime("%Y-%m-%d %H:%M UTC"),
        points=_points,
        days=WINDOW.days,
        broken=sorted(path.name for path in catalog.broken),
    )


@app.get("/", response_class=HTMLResponse)
def jobs_page(user: GetUserDep) -> HTMLResponse:
    """The page, for a signed-in user (a bearer token, else the UI session's cookie: 401 without either), with
    the jobs whose DAGs the user may read."""
    catalog = load_catalog()
    readable = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
    catalog = replace(catalog, jobs={job: spec for job, spec in catalog.jobs.items() if job in readable})
    now = datetime.now(UTC)
    return HTMLResponse(page(catalog, history(set(catalog.jobs), now - WINDOW), now))
