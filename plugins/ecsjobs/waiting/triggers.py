"""The deferrable wait for one ECS task, polled (or told by its STOPPED event) with every other wait on its
cluster."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict

from airflow.providers.amazon.aws.hooks.ecs import EcsHook
from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from airflow.providers.amazon.aws.utils.task_log_fetcher import AwsTaskLogFetcher
from airflow.triggers.base import BaseTrigger, TriggerEvent
from botocore.exceptions import ClientError

from ecsjobs.aws import AWS_ERRORS, backoff, is_transient
from ecsjobs.comms import finished
from ecsjobs.ecs import EcsTask, moment
from ecsjobs.reporting.alerts import step_late
from ecsjobs.reporting.steprun import task_stopped_at
from ecsjobs.waiting.poller import DEFAULT_BOTOCORE_CONFIG, DEFAULT_RECONCILE_INTERVAL, poller_for
from ecsjobs.waiting.sightings import Sighting


class WaitStatus(StrEnum):
    """How a wait ended, the ``status`` of the trigger's event (JSON text in the event, as a ``StrEnum``)."""

    STOPPED = "stopped"  # the task stopped: judge it
    TIMED_OUT = "timed_out"  # the trigger stopped it at the step's deadline
    KILLED = "killed"  # the trigger stopped it because a user ended the task instance
    MISSING = "missing"  # ECS no longer describes the task


class WaitEvent(TypedDict):
    """The payload of the trigger's event, as the deferred task gets it back (JSON: the task's times are ISO
    8601 text, ``status`` a plain string equal to its ``WaitStatus``)."""

    status: WaitStatus
    task_arn: str
    cluster: str
    task: EcsTask | None  # the final DescribeTasks description; None when missing
    detected_at: float  # epoch seconds when the poller saw the end


DEFAULT_STOP_REASON = "Stopped by Airflow: the step's deadline passed"
DEFAULT_KILL_REASON = "Stopped by Airflow: the task instance was killed by a user"


class EcsTaskWaitTrigger(BaseTrigger):
    """
    Wait for one ECS task to stop, sharing DescribeTasks calls with every other wait on its cluster.

    Unlike the provider's ``TaskDoneTrigger``, which polls one task per call, this one registers with the
    cluster's poller (``ecsjobs.waiting.poller``): N waits cost ceil(N/100) calls per interval, and throttling
    slows them down instead of failing them. Airflow does not enforce ``execution_timeout`` while a task is
    deferred, so the trigger enforces ``deadline`` itself; and on Airflow 3.3+ it stops the ECS task when a
    user marks the deferred task instance failed or successful, or clears it (``on_kill``). It only waits:
    judging the exit codes is the operator's job.

    The event's payload: ``status`` (``stopped``; ``missing`` when ECS no longer knows the task; ``timed_out``
    when the trigger stopped it at the deadline; ``killed`` when it was stopped with ``kill_reason``),
    ``task_arn``, ``cluster``, ``task`` (the final DescribeTasks description with ISO 8601 datetimes, None
    when missing) and ``detected_at`` (epoch seconds when the poller saw the end).

    :param cluster: short name or full ARN of the cluster where the task runs.
    :param task_arn: ARN of the task to wait for.
    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: The AWS region of the cluster.
    :param poll_interval: seconds between DescribeTasks rounds; a cluster's poller uses the smallest interval
        its waits ask for. Also the interval of reading CloudWatch logs.
    :param deadline: epoch seconds or ISO 8601 datetime (UTC if naive): if the task has not stopped by then,
        the trigger stops it with ``stop_reason``, waits until it is STOPPED and reports ``timed_out``.
    :param stop_reason: StopTask reason at the deadline.
    :param kill_reason: StopTask reason when the deferred task instance is killed by a user; None leaves the
        ECS task running.
    :param log_group: CloudWatch log group of the container whose lines to forward to this trigger's log.
    :param log_stream: CloudWatch log stream of that container; both are needed to forward lines.
    :param log_region_name: region of the log group, if not the cluster's.
    :param botocore_config: Configuration dictionary for the botocore clients (default: adaptive retries).
        Waits on one cluster share the client made with the config of the first of them.
    :param late_alert: ``{"at": epoch seconds, "slack_conn_id": ..., "message": alerts.Message as a dict,
        "claim": {"group", "job", "key"} or absent}``: the "running late" Slack alert to send if the task is
        still running at ``at``; with a claim (``ecsjobs.reporting.claims``) only the first trigger to reach
        ``at`` sends it, so a triggerer restarted after ``at``, or another triggerer taking the wait over,
        does not.
    :param not_before: epoch seconds before which the event is held back: Airflow may take a trigger that
        fires within seconds of its task deferring for a failure of the resumed try (apache/airflow#72716).
    :param events_queue: SQS queue fed with the cluster's ECS task state change events
        (``ecsjobs.waiting.state_events``): the poller then learns of the task's end from its STOPPED event.
    :param reconcile_interval: seconds between DescribeTasks rounds while events arrive.
    """

    def __init__(
        self,
        cluster: str,
        task_arn: str,
        aws_conn_id: str | None,
        region_name: str | None = None,
        poll_interval: float = 6,
        deadline: float | str | datetime | None = None,
        stop_reason: str = DEFAULT_STOP_REASON,
        kill_reason: str | None = DEFAULT_KILL_REASON,
        log_group: str | None = None,
        log_stream: str | None = None,
        log_region_name: str | None = None,
        botocore_config: dict[str, Any] | None = None,
        late_alert: dict[str, Any] | None = None,
        not_before: float | None = None,
        events_queue: str | None = None,
        reconcile_interval: float = DEFAULT_RECONCILE_INTERVAL,
    ):
        super().__init__()
        self.cluster = cluster
        self.task_arn = task_arn
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.poll_interval = poll_interval
        self.deadline = _epoch(deadline)
        self.stop_reason = stop_reason
        self.kill_reason = kill_reason
        self.log_group = log_group
        self.log_stream = log_stream
        self.log_region_name = log_region_name
        self.botocore_config = botocore_config
        self.late_alert = late_alert
        self.not_before = not_before
        self.events_queue = events_queue
        self.reconcile_interval = reconcile_interval

    @classmethod
    def waiting_for(cls, source: Any, task_arn: str, **options: Any) -> EcsTaskWaitTrigger:
        """The wait for ``task_arn`` with the cluster, AWS connection, region, poll interval and events queue
        of ``source`` (a step or a completion sensor); ``options`` are the other arguments."""
        return cls(
            cluster=source.cluster,
            task_arn=task_arn,
            aws_conn_id=source.aws_conn_id,
            region_name=source.region_name,
            poll_interval=source.poll_interval,
            events_queue=source.events_queue,
            reconcile_interval=source.reconcile_interval,
            **options,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            self.__class__.__module__ + "." + self.__class__.__qualname__,
            {
                "cluster": self.cluster,
                "task_arn": self.task_arn,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "stop_reason": self.stop_reason,
                "kill_reason": self.kill_reason,
                "log_group": self.log_group,
                "log_stream": self.log_stream,
                "log_region_name": self.log_region_name,
                "botocore_config": self.botocore_config,
                "late_alert": self.late_alert,
                "not_before": self.not_before,
                "events_queue": self.events_queue,
                "reconcile_interval": self.reconcile_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        poller = poller_for(
            self.aws_conn_id,
            self.region_name,
            self.cluster,
            self.botocore_config,
            self.events_queue,
            self.reconcile_interval,
        )
        future = poller.watch(self.task_arn, self.poll_interval)
        self.log.info("Waiting for ECS task %s on %s to stop.", self.task_arn, self.cluster)
        # A wait that begins past the alert's time (it took over from a triggerer that died) does not alert
        # at once: the task may have ended in time. It alerts once it sees the task's end, if that was late.
        timely = self.late_alert is not None and self.late_alert["at"] > time.time()
        late = asyncio.create_task(self._alert_late()) if timely else None
        try:
            async with self._forwarding_logs():
                sighting, stopped_at_deadline = await self._wait(future)
            if self.late_alert is not None and self._ran_late(sighting):
                # The task was still running at the alert's time, but this wait began later or saw the end
                # first: the alert is owed all the same.
                if late is None:
                    late = asyncio.create_task(self._alert_late())
                await asyncio.wait([late])
        finally:
            if late:
                late.cancel()
            await poller.unwatch(self.task_arn, future)
        event = self._event(sighting, stopped_at_deadline)
        self.log.info("ECS task %s: %s.", self.task_arn, event["status"])
        if self.not_before is not None:
            await asyncio.sleep(max(0.0, self.not_before - time.time()))
        yield TriggerEvent(event)

    async def on_kill(self) -> None:
        """Stop the ECS task when a user marks the deferred task instance failed or successful, or clears it.

        Airflow 3.3+ calls this only on such a user action, never on a triggerer restart, a trigger timeout or
        normal completion. Airflow 3.2's triggerer never calls it: there the ECS task keeps running to its own
        end (the ``deadline`` is not enforced either, since the trigger is gone).
        """
        if self.kill_reason is None:
            return
        self.log.info("Stopping ECS task %s: %s", self.task_arn, self.kill_reason)
        try:
            await self._stop_task(self.kill_reason)
        except Exception:
            self.log.exception("Failed to stop ECS task %s; it keeps running until it ends.", self.task_arn)

    async def _alert_late(self) -> None:
        """Send the "running late" alert at its time; cancelled when the task stops before it."""
        await asyncio.sleep(max(0.0, self._late_at - time.time()))
        if await self._ended_in_time():
            return
        self.log.warning("ECS task %s is running late: alerting Slack.", self.task_arn)
        await step_late(self.late_alert or {}, self.aws_conn_id, self.region_name)

    async def _ended_in_time(self) -> bool:
        """Whether the task stopped before the alert's time though this wait has not seen it yet (its event
        came late or was lost, e.g. while a triggerer was killed): one DescribeTasks, at the alert's time."""
        try:
            async with await finished(self._hook().get_async_conn()) as client:
                described = await client.describe_tasks(cluster=self.cluster, tasks=[self.task_arn])
        except AWS_ERRORS:
            return False  # unknown: better an alert than a lost one
        tasks = described.get("tasks") or []
        stopped = task_stopped_at(tasks[0] if tasks else None)
        return stopped is not None and stopped.timestamp() <= self._late_at

    @property
    def _late_at(self) -> float:
        """When the late alert is due (only asked while there is one)."""
        return float((self.late_alert or {})["at"])

    def _ran_late(self, sighting: Sighting) -> bool:
        """Whether the task was still running at the late alert's time (its end unknown: when it was seen)."""
        stopped = task_stopped_at(sighting.task)
        return (stopped.timestamp() if stopped else sighting.detected_at) > self._late_at

    async def _wait(self, future: asyncio.Future[Sighting]) -> tuple[Sighting, bool]:
        """The task's end, and whether the trigger stopped it at the deadline first."""
        if self.deadline is None:
            return await future, False
        done, _ = await asyncio.wait([future], timeout=max(0.0, self.deadline - time.time()))
        if done:
            return future.result(), False
        self.log.warning("Deadline passed: stopping ECS task %s (%s).", self.task_arn, self.stop_reason)
        await self._stop_at_deadline()
        return await future, True

    async def _stop_at_deadline(self) -> None:
        """StopTask, tried again while ECS throttles; any other error leaves the poller to see how it ends."""
        failures = 0
        while True:
            try:
                await self._stop_task(self.stop_reason)
                return
            except AWS_ERRORS as error:
                if not is_transient(error):
                    self.log.warning("StopTask of %s failed: %s", self.task_arn, error)
                    return
                failures += 1
                await asyncio.sleep(backoff(self.poll_interval, failures))

    def _hook(self) -> EcsHook:
        return EcsHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            config=self.botocore_config or DEFAULT_BOTOCORE_CONFIG,
        )

    async def _stop_task(self, reason: str) -> None:
        async with await finished(self._hook().get_async_conn()) as client:
            await client.stop_task(cluster=self.cluster, task=self.task_arn, reason=reason)

    def _event(self, sighting: Sighting, stopped_at_deadline: bool) -> WaitEvent:
        task = sighting.task
        reason = task.get("stoppedReason") if task else None
        if task is None:
            status = WaitStatus.MISSING
        elif stopped_at_deadline and reason == self.stop_reason:
            status = WaitStatus.TIMED_OUT
        elif self.kill_reason is not None and reason == self.kill_reason:
            status = WaitStatus.KILLED
        else:  # including a task that ended on its own just before the trigger stopped it
            status = WaitStatus.STOPPED
        return {
            "status": status,
            "task_arn": self.task_arn,
            "cluster": self.cluster,
            "task": task,
            "detected_at": sighting.detected_at,
        }

    @contextlib.asynccontextmanager
    async def _forwarding_logs(self) -> AsyncIterator[None]:
        """Copy the container's CloudWatch lines into this trigger's log while waiting, then the last ones."""
        if not (self.log_group and self.log_stream):
            yield
            return
        hook = AwsLogsHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.log_region_name or self.region_name,
            config=self.botocore_config or DEFAULT_BOTOCORE_CONFIG,
        )
        async with await finished(hook.get_async_conn()) as client:
            forwarder = _LogForwarder(client, self.log_group, self.log_stream, self.log)
            following = asyncio.create_task(forwarder.follow(self.poll_interval))
            try:
                yield
            finally:
                following.cancel()
                await asyncio.wait([following])
            await forwarder.forward()


class _LogForwarder:
    """Reads a CloudWatch log stream from where it left off and logs each line, like ``TaskDoneTrigger``."""

    def __init__(self, client: Any, group: str, stream: str, log: Any) -> None:
        self._client, self._group, self._stream, self._log = client, group, stream, log
        self._token: str | None = None

    async def follow(self, interval: float) -> None:
        while True:
            await self.forward()
            await asyncio.sleep(interval)

    async def forward(self) -> None:
        """Log the lines written since the last call; a failed read is logged and retried next time."""
        while True:
            token = {"nextToken": self._token} if self._token else {}
            try:
                response = await self._client.get_log_events(
                    logGroupName=self._group, logStreamName=self._stream, startFromHead=True, **token
                )
            except AWS_ERRORS as error:
                if _code(error) != "ResourceNotFoundException":
                    self._log.warning("Reading log stream %s/%s failed: %s", self._group, self._stream, error)
                return  # the stream appears when the container starts
            for event in response["events"]:
                self._log.info(AwsTaskLogFetcher.event_to_str(event))
            done = not response["events"] or response["nextForwardToken"] == self._token
            self._token = response["nextForwardToken"]
            if done:
                return


def _code(error: Exception) -> str | None:
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


def _epoch(deadline: float | str | datetime | None) -> float | None:
    if deadline is None or isinstance(deadline, int | float):
        return None if deadline is None else float(deadline)
    return moment(deadline).timestamp()
