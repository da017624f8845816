"""The catalog's schema: what a job file, the defaults file and an environment file may contain.

Strict pydantic models: unknown keys are errors, so a typo never silently becomes a default. Every field has a
description; the JSON Schema under ``config/schema/`` is generated from these models for editors.
"""

from __future__ import annotations

import graphlib
import re
import zoneinfo
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

Launch = Literal["fargate", "fargate_spot", "ec2_spot", "ec2"]
AlertEvent = Literal["failure", "timeout", "late", "retry", "recovery"]
OutcomeClass = Literal[
    "application_failure",
    "out_of_memory",
    "infrastructure_loss",
    "failed_to_start",
    "no_capacity",
    "stopped_externally",
    "timed_out",
]
SPOT_LAUNCHES = ("fargate_spot", "ec2_spot")
MAX_COMBINATIONS = 1024  # a matrix's combinations at most: Airflow's default max_map_length
FARGATE_LAUNCHES = ("fargate", "fargate_spot")

TASK_DEFINITION = r"^[A-Za-z0-9_-]{1,255}(:[1-9][0-9]*)?$"  # family, or family:revision
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TEMPLATE = re.compile(r"{{.*?}}|{%.*?%}", re.S)
# Fargate's allowed task sizes: CPU units -> memory MiB allowed with it.
FARGATE_SIZES: dict[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}


def _parse_duration(value: object) -> object:
    """Accept "90s", "30m", "2h", "1d" or a number of seconds, as people write them in YAML."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        try:
            return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
        except OverflowError:
            raise ValueError(f"{value!r} is longer than any duration can be") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return timedelta(seconds=value)
        except OverflowError:
            raise ValueError(f"{value} seconds is longer than any duration can be") from None
    if isinstance(value, str):
        raise ValueError(f"expected a duration like '90s', '30m', '2h' or '1d', got {value!r}")
    return value


def quoted_number(value: object) -> object:
    """An id YAML read as a number lost its leading zeros (and ``0123`` is octal to YAML): say so."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f'YAML read this as the number {value}: quote it, e.g. "012345678901"')
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("expected a positive duration")
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("expected a duration of 0s or more")
    return value


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; expected an IANA name like 'Europe/Berlin'") from None
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration), AfterValidator(_positive)]
Delay = Annotated[timedelta, BeforeValidator(_parse_duration), AfterValidator(_not_negative)]
TimeZone = Annotated[str, AfterValidator(_timezone)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(Strict):
    """How many times each outcome class is retried; unset classes use the built-in defaults."""

    application_failure: int | None = Field(
        default=None, ge=0, description="Non-zero exit of the job's code."
    )
    out_of_memory: int | None = Field(
        default=None, ge=0, description="Container killed for memory (exit 137)."
    )
    infrastructure_loss: int | None = Field(
        default=None, ge=0, description="Spot interruption, termination notice, host failure."
    )
    failed_to_start: int | None = Field(
        default=None, ge=0, description="Image pull, network or secret errors before the container ran."
    )
    no_capacity: int | None = Field(default=None, ge=0, description="RunTask could not place the task.")
    stopped_externally: int | None = Field(default=None, ge=0, description="Someone else stopped the task.")
    timed_out: int | None = Field(
        default=None, ge=0, description="Stopped by this project for running too long."
    )


class Alerts(Strict):
    """Where and when Slack hears about a job."""

    channel: str | None = Field(default=None, description="Slack channel; defaults to the environment's.")
    events: list[AlertEvent] | None = Field(
        default=None, description="Events that alert: failure, timeout, late, retry, recovery."
    )
    deadline: Duration | None = Field(
        default=None,
        description="A run not finished this long after it was queued (triggered, scheduled or cleared) "
        "alerts as late; a backfill of an old date is judged by how long it takes, not by its date.",
    )


class Metrics(Strict):
    """How records and errors are read from the job's final JSON summary log line."""

    records_field: str | None = Field(default=None, description="Summary-line field with records processed.")
    errors_field: str | None = Field(default=None, description="Summary-line field with the error count.")
    logs_insights_query: str | None = Field(
        default=None,
        description="On real AWS: a Logs Insights query returning `records` and `errors` instead.",
    )
    baseline_days: int | None = Field(
        default=None,
        ge=1,
        le=455,
        description="Base the duration alarm on the step's Duration metric over this many days instead of "
        "`expected_duration`, which stays the fallback while the metric has no data.",
    )
    baseline_statistic: Literal["Average", "Maximum", "p50", "p90", "p95", "p99"] | None = Field(
        default=None,
        description="Statistic of those days' Duration the alarm is based on (with `baseline_days`); "
        "default Average.",
    )

    @model_validator(mode="after")
    def _statistic_needs_days(self) -> Metrics:
        if self.baseline_statistic and self.baseline_days is None:
            raise ValueError("baseline_statistic needs baseline_days (how many days of Duration to read)")
        return self


class StepSettings(Strict):
    """Settings of an ECS step. They may be set in defaults, on a job (for all its steps) or on a step."""

    task_definition: str | None = Field(
        default=None,
        pattern=TASK_DEFINITION,
        description="Task definition family, or family:revision to pin one revision.",
    )
    container: str | None = Field(
        default=None, description="Name of the essential container that runs the job (receives overrides)."
    )
    command: list[str] | None = Field(
        default=None,
        description="Replaces the container's command; each argument is a Jinja template, not a shell line.",
    )
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables merged into the container's; values are Jinja templates.",
    )
    cpu: int | None = Field(default=None, gt=0, description="Task-level CPU units override (e.g. 1024).")
    memory: int | None = Field(
        default=None, gt=0, description="Task-level memory override in MiB (e.g. 2048)."
    )
    launch: Launch | None = Field(default=None, description="Where the task runs.")
    fallback_after: int | None = Field(
        default=None,
        ge=0,
        description="Spot interruptions or capacity failures after which the step runs on demand "
        "(Fargate, or the environment's on-demand EC2 capacity); 0 never falls back. Default 1.",
    )
    platform_version: str | None = Field(default=None, description="Fargate platform version, e.g. LATEST.")
    network: str | None = Field(
        default=None, description="Name of one of the environment's `networks` to use instead of its default."
    )
    task_tags: dict[str, str] = Field(default_factory=dict, description="Tags put on the ECS task.")
    propagate_tags: bool | None = Field(
        default=None,
        description="Copy the task definition's tags to the task (RunTask propagateTags TASK_DEFINITION); "
        "false copies none, as RunTask does when it is not given. Default true.",
    )
    retries: int | None = Field(
        default=None,
        ge=0,
        description="Retries of the step (upper bound); Airflow gets one more, kept for adopting a succeeded "
        "ECS task whose try Airflow failed.",
    )
    retry_delay: Duration | None = Field(default=None, description="Delay before a retry.")
    retry_policy: RetryPolicy | None = Field(default=None, description="Retries per outcome class.")
    timeout: Duration | None = Field(default=None, description="Longest a step may run before it is stopped.")
    resume_delay: Delay | None = Field(
        default=None,
        description="The environment's resume_delay for this step: 0s resumes as soon as the task stopped, "
        "at the cost of an adopting retry now and then.",
    )
    expected_duration: Duration | None = Field(
        default=None, description="Usual run time; a step running 1.5x longer alerts, and alarms use it."
    )
    alerts: Alerts | None = Field(default=None, description="Slack alert routing.")
    metrics: Metrics | None = Field(default=None, description="Where records and errors come from.")
    log_group: str | None = Field(
        default=None, description="awslogs group of the container; defaults to /ecs/<family>."
    )
    log_stream_prefix: str | None = Field(default=None, description="awslogs-stream-prefix of the container.")


class StepEntry(StepSettings):
    """A step as written in a job file; what it does not set comes from the job and the defaults."""

    depends_on: list[str] = Field(default_factory=list, description="Steps that must succeed first.")


class Step(StepEntry):
    """One ECS task in a job, with settings layered over the job's and the defaults'."""

    task_definition: str = Field(
        pattern=TASK_DEFINITION,
        description="Task definition family, or family:revision to pin one revision.",
    )
    container: str = Field(
        description="Name of the essential container that runs the job (receives overrides)."
    )
    launch: Launch = Field(default="fargate", description="Where the task runs.")

    @property
    def family(self) -> str:
        return self.task_definition.split(":")[0]


class ParamSpec(Strict):
    """A run parameter: shown in the UI trigger form, validated before a run is created."""

    type: Literal["string", "integer", "number", "boolean", "array", "object"] = Field(
        description="JSON Schema type of the value."
    )
    description: str = Field(description="Help text shown under the field in the trigger form.")
    default: Any = Field(default=None, description="Value for scheduled runs and the form's initial value.")
    title: str | None = Field(default=None, description="Label in the form (defaults to the name).")
    enum: list[Any] | None = Field(default=None, min_length=1, description="The only allowed values.")
    pattern: str | None = Field(default=None, description="Regular expression a string must match.")
    format: Literal["date", "date-time", "time", "email", "uri"] | None = Field(
        default=None, description="String format (e.g. date shows a date picker)."
    )
    minimum: float | None = Field(default=None, description="Smallest allowed number.")
    maximum: float | None = Field(default=None, description="Largest allowed number.")
    items: dict[str, Any] | None = Field(default=None, description="JSON Schema of array items.")

    def schema_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of Airflow's ``Param`` (JSON Schema keywords) besides default and description."""
        return self.model_dump(exclude={"default", "description"}, exclude_none=True)


def _axis(value: object) -> object:
    if value is None:
        raise ValueError(
            "this matrix axis has no values: give a list like [a, b] or a template like '{{ params.<name> }}'"
        )
    return value


MatrixAxis = Annotated[
    list[str | int | float | bool] | str,
    BeforeValidator(_axis),
    Field(
        description="Values to fan out over, or a template such as '{{ params.customers }}' giving a list."
    ),
]


class JobSettings(StepSettings):
    """Job-level keys that also make sense organisation-wide (the defaults file)."""

    owner: str | None = Field(default=None, description="Team or person responsible for the job.")
    tags: list[str] = Field(default_factory=list, description="Airflow DAG tags (filters in the UI).")
    timezone: TimeZone | None = Field(
        default=None, description="IANA time zone the schedule is read in (UTC)."
    )
    catchup: bool | None = Field(default=None, description="Create runs for missed intervals.")
    max_active_runs: int | None = Field(default=None, ge=1, description="Concurrent runs of the job.")


class Job(JobSettings):
    """A job file: one scheduled job, made of one or more steps."""

    description: str = Field(min_length=1, description="What the job does; shown in the Airflow UI.")
    schedule: str | None = Field(
        default=None,
        description="EventBridge cron(...) or rate(...), 5-field cron, an Airflow preset, or none (manual).",
    )
    start_date: date = Field(description="First logical date the job may run for.")
    end_date: datetime | None = Field(
        default=None,
        description="Last instant the job is scheduled at (a fire at exactly this instant still runs, as "
        "Airflow's end_date); without a time zone it is read in the job's. None: no end.",
    )
    paused: bool | None = Field(
        default=None,
        description="Create the job's DAG paused (true) or unpaused (false); by default Airflow's "
        "dags_are_paused_at_creation decides. Only the first deployment of the DAG is affected.",
    )
    params: dict[str, ParamSpec] = Field(
        default_factory=dict, description="Run parameters (UI trigger form)."
    )
    matrix: dict[str, MatrixAxis] = Field(
        default_factory=dict, description="Fan-out: the job's steps run once per combination of these values."
    )
    steps: dict[str, StepEntry | None] | None = Field(
        default=None, min_length=1, description="Named steps; a job without steps is one step called `run`."
    )


def fargate_size_error(cpu: int | None, memory: int | None) -> tuple[str, str] | None:
    """The field and the reason when a cpu/memory override is not a Fargate task size, else None."""
    if cpu is not None and cpu not in FARGATE_SIZES:
        return "cpu", f"cpu {cpu} is not a Fargate size; expected one of {sorted(FARGATE_SIZES)}"
    if cpu is not None and memory is not None and memory not in FARGATE_SIZES[cpu]:
        allowed = FARGATE_SIZES[cpu]
        return "memory", (
            f"memory {memory} MiB is not allowed with cpu {cpu} on Fargate; expected "
            f"{allowed.start}-{allowed.stop - 1} MiB in steps of {allowed.step}"
        )
    if cpu is None and memory is not None and not any(memory in sizes for sizes in FARGATE_SIZES.values()):
        return "memory", f"memory {memory} MiB is not a Fargate size"
    return None


def step_order(steps: dict[str, list[str]]) -> list[str]:
    """Steps in dependency order; raises ``graphlib.CycleError`` naming the cycle."""
    return list(graphlib.TopologicalSorter(steps).static_order())
