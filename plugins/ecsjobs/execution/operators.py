"""The operator that runs one catalog step as an ECS task.

A subclass of the Amazon provider's ``EcsRunTaskOperator``: it keeps the provider's hook, connection
handling, ``ecs_task_arn`` XCom and log fetching (``ecsjobs.execution.provider``), and replaces what the
provider gets wrong for batch jobs (see ``ecsjobs.decisions.outcome``): the wait is batched across tasks
(``ecsjobs.waiting.triggers``), the result is judged by essential containers and stop codes, each outcome
class has its own retry budget, Spot falls back to on-demand (``ecsjobs.decisions.retries``), the step timeout
holds while deferred, and no try starts an ECS task while an earlier one still runs or after one succeeded
(``ecsjobs.execution.history``).

A succeeded ECS task is never started again. Airflow can fail a try whose ECS task succeeded: when a trigger
fires within seconds of its task deferring, the scheduler may read the worker's stale "finished" for a failure
of the resumed try and retry it (apache/airflow#72716, #66374; not fixed in 3.2 nor 3.3). The retry then
*adopts* the succeeded task's result instead of starting another. To tell such a retry from a user's clear
of a succeeded step (which must run it again), a try reads Airflow's record of the task instance: a clear
raises ``max_tries`` to the try number plus ``retries``, so only tries after the last clear are adopted. Every
step keeps Airflow retries (``ecsjobs.decisions.retries.ADOPTION_RESERVE``) that its own retry budget never
spends, so that the race on its last try is adopted too instead of leaving a succeeded step FAILED. A failure
is adopted the same way when it left no retry: the job is not run again against its retry policy.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, NoReturn

import jinja2
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.providers.amazon.aws.utils.identifiers import generate_uuid
from botocore.exceptions import ClientError

from ecsjobs import aws
from ecsjobs.aws import BOTOCORE_CONFIG, is_transient
from ecsjobs.decisions.outcome import (
    Outcome,
    OutcomeClass,
    allowed_retries,
    judge_missing,
    judge_rejected,
    judge_run_task_failures,
    judge_task,
    kill_stop_reason,
    timeout_stop_reason,
)
from ecsjobs.decisions.retries import (
    ADOPTION_RESERVE,
    Decision,
    Tries,
    decide,
    lost_result_was_final,
    on_demand,
)
from ecsjobs.ecs import TaskStatus, moment, resource_name
from ecsjobs.execution import provider
from ecsjobs.execution.failures import StepFailed, StepFailedFinally
from ecsjobs.execution.history import LAUNCH_TAG, TRY_TAG, started_by_for, tag, tasks_of, try_of
from ecsjobs.execution.links import EcsTaskLink, EcsTaskLogsLink, log_stream_url
from ecsjobs.execution.taskdefs import definition, essential_containers
from ecsjobs.execution.templating import with_run_dates
from ecsjobs.reporting import audit, claims, metrics
from ecsjobs.reporting.alerts import LATE_FACTOR, Route, step_late, step_message
from ecsjobs.reporting.cost import Estimate, estimate
from ecsjobs.reporting.metrics import insights_counts, insights_query, summary_counts
from ecsjobs.reporting.steprun import StepRun, task_duration, task_stopped_at
from ecsjobs.waiting.poller import DEFAULT_RECONCILE_INTERVAL
from ecsjobs.waiting.triggers import EcsTaskWaitTrigger, WaitStatus

# The defer timeout is a safety net behind the trigger's own deadline, for a triggerer that never answers.
DEFER_GRACE = timedelta(minutes=10)
# Seconds a try waits for the audit record of a result another try claimed (``_report``) before writing it.
CLAIM_GRACE = 15.0
CAPACITY_RETRY_DELAYS = (5, 15)  # seconds between RunTask attempts on the same capacity within one try
# RunTask: "A total of 8192 characters are allowed for overrides", JSON formatting included.
MAX_OVERRIDES_LENGTH = 8192
KILL_REASON = kill_stop_reason("the Airflow task was stopped (marked failed or cleared)")


class EcsJobOperator(EcsRunTaskOperator):
    """Run one step of a catalog job on ECS and wait for it without holding a worker slot.

    :param container_name: the essential container that runs the job: it receives the overrides, decides the
        outcome with the other essential containers, and names the CloudWatch log stream.
    :param matrix: this instance's matrix combination (``{axis: value}``); each value reaches the container
        as an environment variable named after the axis in upper case, and templates see it as ``matrix``.
    :param launch: the catalog's launch (``fargate``, ``fargate_spot``, ``ec2_spot``, ``ec2``), for alerts.
    :param on_demand: ``launch_type`` / ``capacity_provider_strategy`` to use once Spot has failed the step
        ``fallback_after`` times (Spot losses in earlier tries, or capacity failures in this one).
    :param fallback_after: Spot failures before falling back to ``on_demand``; 0 never falls back.
    :param outcome_retries: retries per outcome class (a ``RetryPolicy`` as a dict); classes it does not set
        use ``ecsjobs.decisions.outcome.DEFAULT_RETRIES``; the step's ``retries`` stays the upper bound.
    :param step_timeout: longest the step may run; its ECS task is stopped then, even while deferred.
    :param poll_interval: seconds between DescribeTasks polls of the shared poller.
    :param events_queue: SQS queue with the cluster's ECS task state change events; the poller then learns
        of the task's end from its event and describes tasks only every ``reconcile_interval`` seconds.
    :param reconcile_interval: seconds between DescribeTasks rounds while events arrive.
    :param resume_delay: seconds after deferring before the step may resume: by then the stale "finished" of
        the worker that deferred has reached the scheduler, so the race of the module docstring is rare.
    :param environment: the catalog environment's name (a metrics dimension, in the audit record).
    :param metrics_namespace: CloudWatch namespace of the per-step metrics; None publishes none.
    :param audit_log_group: CloudWatch Logs group of the audit records; None writes none.
    :param records_field: summary-line field with the records processed (``metrics.DEFAULT_RECORDS_FIELD``).
    :param errors_field: summary-line field with the error count (``metrics.DEFAULT_ERRORS_FIELD``).
    :param logs_insights_query: read records and errors with this Logs Insights query instead.
    :param expected_duration: how long the step usually runs; past 1.5x of it, ``late_alert`` is sent.
    :param late_alert: where the "running late" alert goes (None sends none).
    :param pricing: the region's prices (``ecsjobs.reporting.cost.pricing_for``) to estimate what each run
    cost; None
        estimates nothing.
    :param retries: the step's retry budget; Airflow gets ``ADOPTION_RESERVE`` more, which only adoption uses.
    """

    template_fields: Sequence[str] = ("matrix", *EcsRunTaskOperator.template_fields)
    operator_extra_links = (EcsTaskLink(), EcsTaskLogsLink())
    ui_color = "#ffd8a8"
    adoption_reserve = ADOPTION_RESERVE

    def __init__(
        self,
        *,
        container_name: str,
        matrix: dict[str, Any] | None = None,
        launch: str = "fargate",
        on_demand: dict[str, Any] | None = None,
        fallback_after: int = 1,
        outcome_retries: dict[str, int] | None = None,
        step_timeout: timedelta | None = None,
        poll_interval: float = 15,
        events_queue: str | None = None,
        reconcile_interval: float = DEFAULT_RECONCILE_INTERVAL,
        resume_delay: float = 0,
        environment: str = "",
        metrics_namespace: str | None = None,
        audit_log_group: str | None = None,
        records_field: str | None = None,
        errors_field: str | None = None,
        logs_insights_query: str | None = None,
        expected_duration: timedelta | None = None,
        late_alert: Route | None = None,
        pricing: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("botocore_config", BOTOCORE_CONFIG)
        kwargs["deferrable"] = True
        super().__init__(container_name=container_name, **kwargs)
        self.step_retries = self.retries
        self.retries = self.step_retries + ADOPTION_RESERVE
        self.matrix = matrix
        self.launch = launch
        self.on_demand = on_demand
        self.fallback_after = fallback_after
        self.outcome_retries = outcome_retries or {}
        self.step_timeout = step_timeout
        self.poll_interval = poll_interval
        self.events_queue = events_queue
        self.reconcile_interval = reconcile_interval
        self.resume_delay = resume_delay
        self.environment = environment
        self.metrics_namespace = metrics_namespace
        self.audit_log_group = audit_log_group
        self.records_field = records_field
        self.errors_field = errors_field
        self.logs_insights_query = logs_insights_query
        self.expected_duration = expected_duration
        self.late_alert = late_alert
        self.pricing = pricing
        self.started_by: str | None = None
        self.client_token: str | None = None
        self.step_run: StepRun | None = None  # this try's result, for the alert callbacks

    def render_template_fields(self, context, jinja_env=None) -> None:
        """Render ``matrix`` first so the other fields' templates can use ``{{ matrix.<axis> }}``; a run
        without a logical date renders as of its ``run_after`` (``ecsjobs.execution.templating``). A template
        that cannot render fails the step at once as ``rejected``: no retry can fix it."""
        with_run_dates(context)
        jinja_env = jinja_env or self.get_template_env()
        try:
            if self.matrix is not None:
                self.matrix = self.render_template(self.matrix, context, jinja_env)
                context["matrix"] = self.matrix
            super().render_template_fields(context, jinja_env)
        except jinja2.TemplateError as error:
            self._finish(context, judge_rejected(f"{self._failing_field(context, jinja_env)}: {error}"))
        if self.matrix:
            self.overrides = _with_matrix_environment(self.overrides, self.container_name, self.matrix)

    def _failing_field(self, context, jinja_env) -> str:
        """Which template field does not render (rendering a rendered field again changes nothing)."""
        for name in self.template_fields:
            try:
                self.render_template(getattr(self, name), context, jinja_env)
            except jinja2.TemplateError:
                return f"template error in {name!r}"
        return "template error"

    # -- starting -------------------------------------------------------------------------------------------

    def execute(self, context):
        ti = context["ti"]
        self.started_by = started_by_for(ti)
        history = tasks_of(self.client, self.cluster, self.started_by)
        own = next((t for t in history if try_of(t) == ti.try_number), None)
        running = next((t for t in history if t.get("lastStatus") != TaskStatus.STOPPED), None)
        if own or running:
            task = own or running
            self.arn = task["taskArn"]
            self.log.info(
                "Found this step's ECS task %s (%s); not starting another", self.arn, task["lastStatus"]
            )
            return self._waiting(context, tag(task, LAUNCH_TAG) or self.launch, task)
        tries = self._tries(ti)
        earlier = [(t, self._judge(t)) for t in self._since_last_clear(tries, history)]
        succeeded = [(t, outcome) for t, outcome in earlier if outcome.succeeded]
        if succeeded:
            return self._adopt(context, *succeeded[-1])
        if earlier:
            task, outcome = earlier[-1]
            failures = sum(1 for _, other in earlier if other.cls == outcome.cls)
            if lost_result_was_final(outcome.cls, failures, self.outcome_retries, try_of(task), tries):
                return self._adopt(context, task, outcome)
        spot_losses = sum(
            1
            for t, outcome in earlier
            if tag(t, LAUNCH_TAG) != "on_demand" and outcome.cls == OutcomeClass.INFRASTRUCTURE_LOSS
        )
        # Earlier tries with no ECS task of their own could not start one: RunTask found no capacity.
        taskless = ti.try_number - 1 - tries.cleared_after - len({try_of(t) for t, _ in earlier})
        self._waiting(context, self._start(context, spot_losses, taskless))

    def _waiting(self, context, launch: str, task: dict[str, Any] | None = None) -> None:
        """Record the task this try waits for (XCom, links), then defer to the shared poller. A ``task``
        found running (an earlier start of this try, or an earlier try's) is late by its own start."""
        ti = context["ti"]
        self._record_task(context, launch)
        started = ti.start_date.timestamp() if getattr(ti, "start_date", None) else time.time()
        deadline = started + self.step_timeout.total_seconds() if self.step_timeout else None
        self.defer(
            trigger=EcsTaskWaitTrigger.waiting_for(
                self,
                self.arn,
                deadline=deadline,
                kill_reason=KILL_REASON,
                log_group=self.awslogs_group,
                log_stream=provider.log_stream(self),
                botocore_config=self.botocore_config,
                late_alert=self._late_alert(context, launch, min(started, _created(task) or started)),
                not_before=time.time() + self.resume_delay if self.resume_delay else None,
                **({"stop_reason": timeout_stop_reason(self.step_timeout)} if self.step_timeout else {}),
            ),
            method_name="execute_complete",
            timeout=self.step_timeout + DEFER_GRACE if self.step_timeout else None,
        )

    def _record_task(self, context, launch: str) -> None:
        """XCom and links of the task this try waits for or adopted."""
        ti = context["ti"]
        ti.xcom_push(key="ecs_task_arn", value=self.arn)
        ti.xcom_push(key="ecs_launch", value=launch)
        region, partition = self.hook.conn_region_name, self.hook.conn_partition
        EcsTaskLink.persist(
            context=context,
            operator=self,
            region_name=region,
            aws_partition=partition,
            cluster_name=resource_name(self.cluster),
            task_id=resource_name(self.arn),
        )
        if provider.logs_enabled(self):
            EcsTaskLogsLink.persist(
                context=context,
                operator=self,
                region_name=region,
                aws_partition=partition,
                awslogs_region=self.awslogs_region or region,
                awslogs_group=self.awslogs_group,
                awslogs_stream_name=provider.log_stream(self),
            )

    def _tries(self, ti) -> Tries:
        return Tries(number=ti.try_number, max_tries=ti.max_tries, retries=self.retries)

    def _since_last_clear(self, tries: Tries, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The stopped ECS tasks of the earlier tries since the task instance was last cleared: the tries
        whose failures count against the retry budgets, and whose success a retry adopts."""
        return [
            t
            for t in history
            if tries.cleared_after < try_of(t) < tries.number and t.get("lastStatus") == TaskStatus.STOPPED
        ]

    def _judge(self, task: dict[str, Any]) -> Outcome:
        """The outcome of a stopped task, every essential container of its task definition deciding."""
        essential = essential_containers(self.client, task)
        return judge_task(task, essential=essential, main_container=self.container_name)

    def ecs_result(self, ti) -> tuple[dict[str, Any] | None, Outcome | None]:
        """The ECS task ``ti``'s try started and its outcome (None while it runs); (None, None) without one.
        For alerts about a try that Airflow failed without its result."""
        history = tasks_of(self.client, self.cluster, started_by_for(ti))
        task = next((t for t in history if try_of(t) == ti.try_number), None)
        if task is None or task.get("lastStatus") != TaskStatus.STOPPED:
            return task, None
        return task, self._judge(task)

    def _adopt(self, context, task: dict[str, Any], outcome: Outcome) -> Any:
        """Take an earlier try's result (its ECS task succeeded, or failed with no retry left) as this try's,
        without starting another task."""
        self.arn, launch = task["taskArn"], tag(task, LAUNCH_TAG) or self.launch
        self.log.warning(
            "The ECS task %s of try %s ended (%s), but Airflow did not record that try's result "
            "(apache/airflow#72716): this try adopts it instead of starting another task",
            self.arn,
            try_of(task),
            outcome.cls,
        )
        self._record_task(context, launch)
        self._alert_late_after_all(context, launch, task)
        return self._finish(context, outcome, launch, task, adopted_from=try_of(task))

    def _alert_late_after_all(self, context, launch: str, task: dict[str, Any]) -> None:
        """The "running late" alert of an adopted task that ran past its time: owed, once, if the trigger
        that sends it never ran (the earlier try's worker was lost before it deferred)."""
        alert = self._late_alert(context, launch, _created(task) or time.time())
        stopped = task_stopped_at(task)
        if alert and stopped and stopped.timestamp() > alert["at"]:
            asyncio.run(step_late(alert, self.aws_conn_id, self.region_name))

    def _late_alert(self, context, launch: str, started: float) -> dict[str, Any] | None:
        """The "running late" alert the trigger sends if the task still runs at 1.5x its expected duration."""
        if not (self.late_alert and self.expected_duration and "late" in self.late_alert.events):
            return None
        late_after = self.expected_duration * LATE_FACTOR
        run = self._step_run(context, None, launch, final=False)
        note = f"Still running after {late_after} (expected about {self.expected_duration})."
        once = {"group": self.audit_log_group, "job": context["ti"].dag_id, "key": self.arn}
        return {
            "at": started + late_after.total_seconds(),
            "slack_conn_id": self.late_alert.slack_conn_id,
            "message": step_message("late", self.late_alert.channel, run, note=note).to_dict(),
            **({"claim": once} if self.audit_log_group else {}),
        }

    def _start(self, context, spot_losses: int, taskless_tries: int = 0) -> str:
        """RunTask for this try; returns the launch used. Spot falls back to on-demand when it fails.

        ``taskless_tries`` (earlier tries that started no task) count against the no-capacity budget.
        """
        try_number = context["ti"].try_number
        spot = bool(self.capacity_provider_strategy and self.on_demand is not None)
        use_on_demand = on_demand(spot, self.fallback_after, spot_losses)
        capacity_failures = 0
        while True:
            launch = "on_demand" if use_on_demand else self.launch
            # One token per try and placement: a resumed try gets its own task back from RunTask itself.
            self.client_token = generate_uuid(self.started_by, str(try_number), launch)
            request = self.run_task_request(on_demand=use_on_demand, try_number=try_number, launch=launch)
            response = self._run_task(context, request, launch, taskless_tries)
            if response["tasks"]:
                self.arn = response["tasks"][0]["taskArn"]
                self.log.info("Started ECS task %s on %s", self.arn, _launch_text(request))
                return launch
            outcome = judge_run_task_failures(response["failures"])
            self.log.warning("RunTask started no task: %s", outcome.describe())
            capacity_failures += outcome.cls == OutcomeClass.NO_CAPACITY
            if not use_on_demand and on_demand(spot, self.fallback_after, capacity_failures):
                self.log.warning("Spot has no capacity: falling back to on-demand for this try")
                use_on_demand = True
            elif outcome.cls == OutcomeClass.NO_CAPACITY and capacity_failures <= len(CAPACITY_RETRY_DELAYS):
                time.sleep(CAPACITY_RETRY_DELAYS[capacity_failures - 1])
            else:
                self._finish(context, outcome, launch, earlier=taskless_tries)

    def _run_task(self, context, request: dict[str, Any], launch: str, taskless_tries: int) -> dict[str, Any]:
        """RunTask; a request ECS refuses (a missing task definition, an invalid parameter, overrides over
        8,192 characters, access denied) fails the step at once: no retry can fix it. Throttling and server
        errors that outlast botocore's retries leave the step to Airflow's retries."""
        length = len(json.dumps(request["overrides"], separators=(",", ":")))
        if length > MAX_OVERRIDES_LENGTH:
            reason = f"the RunTask overrides are {length} characters; ECS allows {MAX_OVERRIDES_LENGTH}"
            self._finish(context, judge_rejected(reason), launch, earlier=taskless_tries)
        try:
            return self.client.run_task(**request)
        except ClientError as error:
            if is_transient(error):
                raise
            details = error.response.get("Error", {})
            reason = f"RunTask refused: {details.get('Code', 'ClientError')}: {details.get('Message', error)}"
            self._finish(context, judge_rejected(reason), launch, earlier=taskless_tries)

    def run_task_request(
        self, on_demand: bool = False, try_number: int | None = None, launch: str | None = None
    ) -> dict[str, Any]:
        """The RunTask arguments of this step (what ``python -m ecsjobs render`` prints, too)."""
        request: dict[str, Any] = {
            "cluster": self.cluster,
            "taskDefinition": self.task_definition,
            "overrides": self.overrides,
            "startedBy": self.started_by or self.owner,
        }
        placement = (
            self.on_demand
            if on_demand and self.on_demand
            else {
                "launch_type": self.launch_type,
                "capacity_provider_strategy": self.capacity_provider_strategy,
            }
        )
        if placement.get("capacity_provider_strategy"):
            request["capacityProviderStrategy"] = placement["capacity_provider_strategy"]
        elif placement.get("launch_type"):
            request["launchType"] = placement["launch_type"]
        optional = {
            "platformVersion": self.platform_version,
            "group": self.group,
            "networkConfiguration": self.network_configuration,
            "propagateTags": self.propagate_tags,
            "clientToken": self.client_token,
        }
        request.update({key: value for key, value in optional.items() if value is not None})
        tags = dict(self.tags or {})
        if try_number is not None:
            tags |= {TRY_TAG: str(try_number), LAUNCH_TAG: launch or self.launch}
        if tags:
            request["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        return request

    # -- judging --------------------------------------------------------------------------------------------

    def execute_complete(self, context, event: dict[str, Any]):
        ti = context["ti"]
        self.started_by = started_by_for(ti)
        self.arn = event["task_arn"]
        launch = ti.xcom_pull(task_ids=ti.task_id, key="ecs_launch", map_indexes=ti.map_index) or self.launch
        if event["status"] == WaitStatus.MISSING:
            return self._finish(context, judge_missing(self.arn), launch)
        return self._finish(context, self._judge(event["task"]), launch, event["task"])

    def _finish(
        self,
        context,
        outcome: Outcome,
        launch: str | None = None,
        task: dict[str, Any] | None = None,
        adopted_from: int | None = None,
        earlier: int = 0,
    ) -> Any:
        """Report a try's result; return the job's summary on success, else raise so that Airflow retries
        only while the outcome's class has retries left and the step's are not spent.

        ``earlier``: failures of this class in earlier tries that left no ECS task (RunTask placed none).
        """
        ti = context["ti"]
        launch = launch or self.launch
        self.log.info("ECS task %s: %s (launch: %s)", self.arn, outcome.describe(), launch)
        lines = self._last_lines(outcome)
        output = _parsed(lines[-1]) if lines else None
        decision = None if outcome.succeeded else self._decide(ti, outcome, earlier)
        final = decision is None or not decision.retry
        run = self._step_run(context, outcome, launch, final, task, lines, output, adopted_from)
        ti.xcom_push(key="ecs_outcome", value={**outcome.to_dict(), "launch": launch})
        self._report(context, run, task)
        if decision is None:
            return output
        self._raise(outcome, decision, lines)

    def _decide(self, ti, outcome: Outcome, earlier: int) -> Decision:
        """The retry decision for a failed try, counting the failures of its class since the last clear."""
        tries = self._tries(ti)
        if allowed_retries(outcome.cls, self.outcome_retries) > earlier:  # else no count changes the answer
            if self.started_by is None:
                self.started_by = started_by_for(ti)
            history = tasks_of(self.client, self.cluster, self.started_by)
            others = [t for t in self._since_last_clear(tries, history) if t["taskArn"] != self.arn]
            earlier += sum(1 for t in others if self._judge(t).cls == outcome.cls)
        return decide(outcome.cls, earlier, self.outcome_retries, tries)

    @staticmethod
    def _raise(outcome: Outcome, decision: Decision, lines: list[str]) -> NoReturn:
        message = outcome.describe() + ("\nLast log lines:\n" + "\n".join(lines) if lines else "")
        failure = StepFailed if decision.retry else StepFailedFinally
        raise failure(f"{message}\n({decision.why})", outcome)

    def _last_lines(self, outcome: Outcome) -> list[str]:
        """The container's last log lines: the summary line on success, the error's context on failure."""
        if not provider.logs_enabled(self) or not self.arn or outcome.cls == OutcomeClass.NO_CAPACITY:
            return []
        count = 1 if outcome.succeeded else self.number_logs_exception
        try:
            return provider.last_log_lines(self, count)
        except Exception:  # the logs are a courtesy: never let them hide the outcome
            self.log.warning("Could not read the task's last log lines", exc_info=True)
            return []

    # -- reporting ------------------------------------------------------------------------------------------

    def _step_run(
        self,
        context,
        outcome: Outcome | None,
        launch: str,
        final: bool,
        task: dict[str, Any] | None = None,
        lines: list[str] = (),
        output: Any = None,
        adopted_from: int | None = None,
    ) -> StepRun:
        """The facts of this try, for the audit record, the metrics and the alerts."""
        records, errors = self._counts(output, task)
        logs_url = None
        if provider.logs_enabled(self) and self.arn:
            region = self.awslogs_region or self.hook.conn_region_name
            logs_url = log_stream_url(region, self.awslogs_group, provider.log_stream(self))
        return StepRun.of(
            context,
            outcome,
            cost=self._estimate(task),
            task_arn=self.arn,
            environment=self.environment,
            launch=launch,
            fallback=launch == "on_demand",
            duration_seconds=task_duration(task),
            records=records,
            errors=errors,
            final=final,
            adopted_from=adopted_from,
            last_lines=list(lines),
            log_url=getattr(context["ti"], "log_url", None),
            logs_console_url=logs_url,
        )

    def _estimate(self, task: dict[str, Any] | None) -> Estimate | None:
        """What the task cost, at the pinned prices; the task definition (already described to judge the
        outcome) gives the architecture and storage when the task does not."""
        if not (self.pricing and task and task.get("stoppedAt")):
            return None
        described = definition(self.client, task)
        return estimate(
            task,
            self.pricing,
            described and described.cpu_architecture,
            described and described.storage_gib,
        )

    def _counts(self, output: Any, task: dict[str, Any] | None) -> tuple[Any, Any]:
        if not (self.logs_insights_query and task and task.get("startedAt") and provider.logs_enabled(self)):
            return summary_counts(output, self.records_field, self.errors_field)
        query = insights_query(self.logs_insights_query, provider.log_stream(self))
        try:
            start, end = (moment(task[k]) for k in ("startedAt", "stoppedAt"))
            region = self.awslogs_region or self.region_name
            return insights_counts(self.aws_conn_id, region, self.awslogs_group, query, start, end)
        except Exception:  # counts are metrics: a failed query never fails the step
            self.log.warning("Logs Insights query for records and errors failed", exc_info=True)
            return None, None

    def _report(self, context, run: StepRun, task: dict[str, Any] | None) -> None:
        """XCom, metrics and audit record of a try with a result; the last two never fail the step.

        An ECS task's result is reported once, by the first try to claim it (``ecsjobs.reporting.claims``): a
        try that adopts the result of a try Airflow lost, or runs beside it on another worker, reports (and
        alerts) nothing the other did, unless the claimer's audit record is still missing ``CLAIM_GRACE``
        later.
        """
        self.step_run = run
        record = run.record()
        context["ti"].xcom_push(key="ecs_run", value=record)
        logs = self._client("logs") if self.audit_log_group else None
        if logs and task and not claims.claim(logs, self.audit_log_group, "result", record["job"], self.arn):
            # Another try claimed it: it writes the record within moments, unless it died first.
            since = task_stopped_at(task)
            if audit.reported(logs, self.audit_log_group, record, since, within=CLAIM_GRACE):
                self.log.info("ECS task %s's result was reported by another try; not again", self.arn)
                self.step_run = replace(run, reported_before=True)
                return
            self.log.warning(
                "The try that claimed ECS task %s's result never reported it: reporting", self.arn
            )
        if self.metrics_namespace:
            metrics.publish(self._client("cloudwatch"), self.metrics_namespace, metrics.step_metric_data(run))
        if logs:
            audit.write(logs, self.audit_log_group, record)

    def _client(self, service: str) -> Any:
        """This process's client of a side channel (``logs``, ``cloudwatch``) with the step's connection,
        region and botocore config, its retries capped (``aws.SIDE_CHANNEL_RETRIES``)."""
        return aws.side_channel(service, self.aws_conn_id, self.region_name, self.botocore_config)


def _launch_text(request: dict[str, Any]) -> str:
    strategy = request.get("capacityProviderStrategy")
    return (
        f"capacity provider {strategy[0]['capacityProvider']}" if strategy else request.get("launchType", "?")
    )


def _with_matrix_environment(overrides: dict, container: str, matrix: dict[str, Any]) -> dict:
    """Add ``AXIS=value`` to the container's environment; the catalog's own variables win."""
    result = {**overrides, "containerOverrides": [dict(c) for c in overrides.get("containerOverrides", [])]}
    target = next((c for c in result["containerOverrides"] if c.get("name") == container), None)
    if target is None:
        target = {"name": container}
        result["containerOverrides"].append(target)
    environment = list(target.get("environment", []))
    defined = {variable["name"] for variable in environment}
    environment += [
        {"name": axis.upper(), "value": str(value)}
        for axis, value in matrix.items()
        if axis.upper() not in defined
    ]
    target["environment"] = environment
    return result


def _parsed(line: str) -> Any:
    """The last log line, parsed when it is the job's JSON summary: the step's XCom return value, so a later
    step can template an output location or count it logged."""
    try:
        return json.loads(line)
    except ValueError:
        return line


def _created(task: dict[str, Any] | None) -> float | None:
    """When ECS accepted the task (RunTask), epoch seconds."""
    return moment(task["createdAt"]).timestamp() if task and task.get("createdAt") else None
