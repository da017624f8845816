"""Slack alerts: one Block Kit message per event, through the Slack provider's connection.

Events: ``failure`` and ``timeout`` (a step's final failure), ``retry`` (a failed try that will be retried),
``recovery`` (a step that succeeded after failed tries), ``late`` (a step running past 1.5x its expected
duration, sent by the waiting trigger while it runs; a run not finished by its deadline, sent by Airflow's
Deadline Alerts). Success sends nothing: it goes to the audit log only.

Slack never changes a job's outcome: alerts are sent by callbacks after the state is decided, each attempt
is bounded by ``SLACK_TIMEOUT``, a 429 is retried once only if Slack asks for a short wait, and an alert that
could not be delivered is logged as undelivered with its whole content. The token stays in the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseNotifier

from ecsjobs.comms import finished
from ecsjobs.decisions.outcome import OutcomeClass
from ecsjobs.ecs import EcsTask
from ecsjobs.reporting.claims import aonce
from ecsjobs.reporting.steprun import StepRun, task_duration

log = logging.getLogger(__name__)

# CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ESC backslash), charset and two-byte escapes; then the
# C0 and C1 control characters but newline and tab.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -/]*[0-~])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
DEFAULT_EVENTS = ("failure", "timeout", "late")
LATE_FACTOR = 1.5  # a step is late once it has run this many times its expected duration
SLACK_TIMEOUT = 10  # seconds per attempt
MAX_RETRY_AFTER = 5  # a 429 asking for a longer wait is not retried: the alert is logged as undelivered
LAST_LINES_CHARS = 2500  # Slack's section text limit is 3,000 characters
TITLES = {
    "failure": ":red_circle: Step failed",
    "timeout": ":hourglass: Step timed out",
    "retry": ":repeat: Step failed, will retry",
    "recovery": ":large_green_circle: Step recovered",
    "late": ":turtle: Step running late",
    "run_late": ":turtle: Run missed its deadline",
}


@dataclass(frozen=True)
class Route:
    """Where a step's alerts go and which events it wants."""

    slack_conn_id: str
    channel: str
    events: tuple[str, ...] = DEFAULT_EVENTS


@dataclass(frozen=True)
class Message:
    channel: str
    text: str
    blocks: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "text": self.text, "blocks": self.blocks}


def escape(text: Any) -> str:
    """Slack markup escaping for text that comes from jobs or users, terminal escapes removed."""
    return clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clean(text: Any) -> str:
    """``text`` without ANSI escape sequences (colours, cursor moves) and control characters but newline and
    tab: job log lines carry them, and Slack would show them as garbage."""
    return _CONTROL.sub("", _ANSI.sub("", str(text)))


def step_message(event: str, channel: str, run: StepRun, note: str | None = None) -> Message:
    """The alert for one step event, with everything needed to act on it without opening Airflow first."""
    title = f"{TITLES[event]}: {run.job} / {run.step}"
    step = run.step if run.map_index < 0 else f"{run.step} [{run.map_index}]"
    launch = run.launch + (" (on-demand fallback from Spot)" if run.fallback else "")
    fields = {
        "Job / step": f"{run.job} / {step}",
        "Run": f"{run.run_id}\nlogical date {run.logical_date or '-'}",
        "Try": f"{run.try_number} of {run.max_tries + 1}",
        "Outcome": _outcome_text(run),
        "Container / exit code": f"{run.container or '-'} / {_or_dash(run.exit_code)}",
        "Stop code / reason": " / ".join(p for p in (run.stop_code, run.reason) if p) or "-",
        "ECS task": run.task_arn or "none (RunTask started no task)",
        "Launch": launch,
        "Duration": _duration(run.duration_seconds),
        "Estimated cost": run.cost.text() if run.cost else "-",
    }
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{escape(v)}"} for k, v in fields.items()][:10],
        },
    ]
    if note:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": escape(note)}})
    links = [
        f"<{url}|{label}>"
        for url, label in ((run.log_url, "Airflow task log"), (run.logs_console_url, "CloudWatch logs"))
        if url
    ]
    if links:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " | ".join(links)}]})
    if run.last_lines:
        lines = escape("\n".join(run.last_lines)).replace("```", "'''")[-LAST_LINES_CHARS:]
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Last log lines*\n```{lines}```"}}
        )
    outcome = run.outcome.value if run.outcome else "running"
    text = f"{title} (try {run.try_number}, {outcome}, task {run.task_arn or '-'})"
    return Message(channel=channel, text=escape(text), blocks=blocks)


def run_late_message(channel: str, job: str, run_id: str, deadline: str, run_url: str | None) -> Message:
    """The alert for a run that missed its deadline while still running."""
    title = f"{TITLES['run_late']}: {job}"
    body = f"*Run* {escape(run_id)} has not finished within {escape(deadline)} of being queued."
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body}},
    ]
    if run_url:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{run_url}|Airflow run>"}]}
        )
    return Message(channel=channel, text=escape(f"{title} ({run_id})"), blocks=blocks)


def send(slack_conn_id: str, message: Message) -> bool:
    """Post ``message``; False when it could not be delivered (then it is logged in full)."""
    for attempt in ATTEMPTS:
        try:
            client = _hook(slack_conn_id).client
            client.chat_postMessage(channel=message.channel, text=message.text, blocks=message.blocks)
            return _sent(message)
        # Slack down, slow, refusing, or a broken connection: never the job's problem.
        except Exception as error:
            if (wait := _wait_before_retry(error, attempt, message)) is None:
                return False
            time.sleep(wait)
    return False


async def asend(slack_conn_id: str, message: Message) -> bool:
    """:func:`send` for the triggerer's event loop, through the hook's async client (a thread would read the
    connection through the triggerer's channel beside its event loop, which Airflow 3.2 does not survive)."""
    for attempt in ATTEMPTS:
        try:
            client = await finished(_hook(slack_conn_id).get_async_client())
            await client.chat_postMessage(channel=message.channel, text=message.text, blocks=message.blocks)
            return _sent(message)
        except Exception as error:
            if (wait := _wait_before_retry(error, attempt, message)) is None:
                return False
            await asyncio.sleep(wait)
    return False


ATTEMPTS = (1, 2)


def _sent(message: Message) -> bool:
    log.info("Slack alert sent to %s: %s", message.channel, message.text)
    return True


def _wait_before_retry(error: Exception, attempt: int, message: Message) -> float | None:
    """Seconds to wait before trying again, or None (the alert is then logged as undelivered): only a 429 on
    the first attempt asking for at most ``MAX_RETRY_AFTER`` seconds is tried again."""
    wait = _retry_after(error)
    if attempt < ATTEMPTS[-1] and wait is not None and wait <= MAX_RETRY_AFTER:
        return wait
    _undelivered(message, error)
    return None


def _hook(slack_conn_id: str) -> Any:
    """The Slack provider's hook, imported here rather than at the top: every DAG parse imports this module,
    and the provider with slack_sdk's aiohttp client would add about 90 ms to each, for an alert few send."""
    from airflow.providers.slack.hooks.slack import SlackHook

    return SlackHook(slack_conn_id=slack_conn_id, timeout=SLACK_TIMEOUT)


def _retry_after(error: Exception) -> float | None:
    from slack_sdk.errors import SlackApiError

    if isinstance(error, SlackApiError) and getattr(error.response, "status_code", None) == 429:
        try:
            return float(error.response.headers.get("Retry-After", 1))
        except (TypeError, ValueError):
            return 1.0
    return None


def _undelivered(message: Message, error: Exception) -> None:
    log.error(
        "Slack alert undelivered (%s: %s): %s", type(error).__name__, error, json.dumps(message.to_dict())
    )


class StepAlertNotifier(BaseNotifier):
    """Task callback that sends a step's alert for one callback kind, if its route wants the event.

    :param kind: ``failure`` (on_failure_callback: alerts as ``timeout`` when the step timed out),
        ``retry`` (on_retry_callback) or ``recovery`` (on_success_callback: only after a failed try).
    """

    template_fields: Sequence[str] = ()

    def __init__(self, *, kind: str, route: Route) -> None:
        super().__init__()
        self.kind = kind
        self.route = route

    def notify(self, context: Any) -> None:
        run: StepRun | None = getattr(context.get("task"), "step_run", None)
        ti = context["ti"]
        note = None
        if run is not None and run.reported_before:
            return  # the try that Airflow lost had alerted about this result already
        if run is None or run.try_number != ti.try_number:
            # Airflow failed the try without its result: the scheduler (a lost worker, apache/airflow#72716)
            # or an error before the ECS task had one. What the try's ECS task did decides what to say.
            task, outcome = _ecs_result(context)
            if self.kind == "retry" and task:
                log.info("No retry alert: the next try takes over this try's ECS task %s", task["taskArn"])
                return
            run = _run_without_result(context, task, outcome)
            if outcome is not None and outcome.succeeded:
                note = LOST_SUCCESS
        event = self.kind
        if self.kind == "failure" and run.outcome is OutcomeClass.TIMED_OUT:
            event = "timeout"
        if event == "recovery" and (run.adopted_from or run.try_number) < 2:
            return  # the ECS task that succeeded was the first one
        if event in self.route.events:
            send(self.route.slack_conn_id, step_message(event, self.route.channel, run, note=note))


LOST_SUCCESS = (
    "Airflow marked this step failed although its ECS task succeeded (apache/airflow#72716). Mark the step "
    "successful to let the run go on; clearing it runs the job again."
)


def _ecs_result(context: Any) -> tuple[EcsTask | None, Any]:
    """The ECS task of the callback's try and its outcome (None while it runs), if the task is a step's;
    (None, None) when it has none or it cannot be looked up: the alert is sent as it would be without it."""
    lookup = getattr(context.get("task"), "ecs_result", None)
    if lookup is None:
        return None, None
    try:
        found: tuple[EcsTask | None, Any] = lookup(context["ti"])
        return found
    except Exception:
        log.warning("Could not look up the ECS task of this try", exc_info=True)
        return None, None


def _run_without_result(context: Any, task: EcsTask | None = None, outcome: Any = None) -> StepRun:
    """A try that failed with no result of its own: Airflow failed it, or an error came first (a template
    that does not render, ...): the error says why, or the outcome of its ECS task when it has one."""
    error, operator = context.get("exception"), context.get("task")
    run = StepRun.of(
        context,
        outcome,
        task["taskArn"] if task else None,
        environment=getattr(operator, "environment", "") or "",
        launch=getattr(operator, "launch", "") or "",
        fallback=False,
        duration_seconds=task_duration(task),
        records=None,
        errors=None,
        final=True,
        log_url=getattr(context["ti"], "log_url", None),
    )
    if outcome is not None:
        return run
    reason = f"{type(error).__name__}: {error}" if error else "unknown"
    return replace(run, outcome=OutcomeClass.NO_RESULT, reason=reason)


async def run_late(
    slack_conn_id: str,
    channel: str,
    deadline: str,
    context: dict[str, Any] | None = None,
    claim: dict[str, Any] | None = None,
) -> bool:
    """Deadline Alert callback (runs in the triggerer): the run is still going past its deadline. With a
    ``claim`` (``{"aws_conn_id", "region_name", "group"}``, ``ecsjobs.reporting.claims``) a callback run
    again, by a restarted or another triggerer, does not alert again."""
    dag_run = (context or {}).get("dag_run") or {}  # Airflow's DAGRunResponse, as JSON
    job, run_id = _get(dag_run, "dag_id"), _get(dag_run, "dag_run_id")
    message = run_late_message(channel, job, run_id, deadline, None)
    if not claim:
        return await asend(slack_conn_id, message)
    ids = claim["aws_conn_id"], claim["region_name"], claim["group"]
    if not await aonce(*ids, "run_late", job, run_id, lambda: asend(slack_conn_id, message)):
        log.info("Run %s of %s is late; alerted already", run_id, job)
        return False
    return True


async def step_late(late_alert: dict[str, Any], aws_conn_id: str | None, region_name: str | None) -> bool:
    """Send a step's "running late" alert (``late_alert`` as the operator builds it for its trigger); with
    a ``claim`` once across processes (``ecsjobs.reporting.claims``). True if this call sent it."""
    message = Message(**late_alert["message"])
    once = late_alert.get("claim")
    if not once:
        return await asend(late_alert["slack_conn_id"], message)
    ids = aws_conn_id, region_name, once["group"]
    if not await aonce(
        *ids, "late", once["job"], once["key"], lambda: asend(late_alert["slack_conn_id"], message)
    ):
        log.info("%s: alerted already", message.text)
        return False
    return True


def _get(obj: Any, name: str) -> str:
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return str(value) if value is not None else "?"


def _outcome_text(run: StepRun) -> str:
    return run.outcome.value.replace("_", " ") if run.outcome else "running"


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return str(timedelta(seconds=round(seconds)))
