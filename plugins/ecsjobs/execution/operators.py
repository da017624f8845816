"""The operator that runs one catalog step as an ECS task.

A subclass of the Amazon provider's ``EcsRunTaskOperator``: it keeps the provider's hook, connection
handling, ``ecs_task_arn`` XCom and log fetching (``ecsjobs.execution.provider``), and replaces what the
provider gets wrong for batch jobs (see ``ecsjobs.decisions.outcome``): the wait is batched across tasks
(``ecsjobs.waiting.triggers``), the result is judged by essential containers and stop codes, each outcome
class has its own retry budget, Spot falls back to on-demand (``ecsjobs.decisions.retries``), the step timeout
holds while deferred, and no try starts an ECS task while an earlier one still runs or after one succeeded
(``ecsjobs.execution.history``; why a retry may adopt an earlier try's result: ``ecsjobs.decisions.retries``).
The operator gathers the facts, asks the pure decisions what to do, and acts: starting is
``execution.starting``, reporting ``execution.results``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import jinja2
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

from ecsjobs.aws import BOTOCORE_CONFIG
from ecsjobs.decisions.outcome import Outcome, allowed_retries, judge_missing, judge_rejected
from ecsjobs.decisions.retries import ADOPTION_RESERVE, Adopt, Decision, Earlier, Tries, decide, plan_try
from ecsjobs.ecs import EcsTask, TaskStatus
from ecsjobs.execution import deferral, history, results, starting
from ecsjobs.execution.failures import failure
from ecsjobs.execution.links import EcsTaskLink, EcsTaskLogsLink, persist_links
from ecsjobs.execution.results import Reporting
from ecsjobs.execution.taskdefs import judged
from ecsjobs.execution.templating import failing_field, with_run_dates
from ecsjobs.reporting.steprun import StepRun
from ecsjobs.waiting.poller import DEFAULT_RECONCILE_INTERVAL
from ecsjobs.waiting.triggers import WaitEvent, WaitStatus

if TYPE_CHECKING:
    from airflow.sdk import Context


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
        the worker that deferred has reached the scheduler, so Airflow's race (``decisions.retries``) is rare.
    :param reporting: what its tries report, and where (audit log, metrics, late alert, cost).
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
        reporting: Reporting | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("botocore_config", BOTOCORE_CONFIG)
        kwargs["deferrable"] = True
        super().__init__(container_name=container_name, **kwargs)
        self.step_retries: int = self.retries or 0
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
        self.reporting = reporting or Reporting()
        self.started_by: str | None = None
        self.client_token: str | None = None
        self.step_run: StepRun | None = None  # this try's result, for the alert callbacks

    def render_template_fields(self, context: Any, jinja_env: jinja2.Environment | None = None) -> None:
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
            self._finish(context, judge_rejected(f"{failing_field(self, context, jinja_env)}: {error}"))
        if self.matrix:
            self.overrides = starting.with_matrix_environment(
                self.overrides, self.container_name or "", self.matrix
            )

    # -- starting -------------------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        ti = context["ti"]
        self.started_by = history.started_by_for(ti)
        tasks = history.tasks_of(self.client, self.cluster, self.started_by)
        task = history.task_to_wait_for(tasks, ti.try_number)
        if task:
            self.arn = task["taskArn"]
            self.log.info(
                "Found this step's ECS task %s (%s); not starting another", self.arn, task["lastStatus"]
            )
            return self._waiting(context, history.tag(task, history.LAUNCH_TAG) or self.launch, task)
        tries = self._tries(ti)
        plan = plan_try(tries, self._earlier(tries, tasks), self.outcome_retries)
        if isinstance(plan, Adopt):
            return self._adopt(context, plan.earlier)
        started = starting.start(self, ti.try_number, plan.spot_losses)
        if started.failed:
            self._finish(context, started.failed, started.launch, earlier=plan.taskless_tries)
        self._waiting(context, started.launch)

    def _waiting(self, context: Context, launch: str, task: EcsTask | None = None) -> None:
        """Record the task this try waits for (XCom, links), then defer to the shared poller."""
        self._record_task(context, launch)
        trigger, timeout = deferral.wait_for(self, context, launch, task)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timeout)

    def _record_task(self, context: Context, launch: str) -> None:
        """XCom and links of the task this try waits for or adopted."""
        context["ti"].xcom_push(key="ecs_task_arn", value=self.arn)
        context["ti"].xcom_push(key="ecs_launch", value=launch)
        persist_links(self, context)

    def _tries(self, ti: Any) -> Tries:
        return Tries(number=ti.try_number, max_tries=ti.max_tries, retries=self.retries or 0)

    def _earlier(self, tries: Tries, tasks: list[EcsTask]) -> list[Earlier]:
        return [
            Earlier(t, history.try_of(t), history.tag(t, history.LAUNCH_TAG) == "on_demand", self._judge(t))
            for t in history.since_last_clear(tasks, tries)
        ]

    def _judge(self, task: EcsTask) -> Outcome:
        return judged(self.client, task, self.container_name or "")

    def ecs_result(self, ti: Any) -> tuple[EcsTask | None, Outcome | None]:
        """The ECS task ``ti``'s try started and its outcome (None while it runs); (None, None) without one.
        For alerts about a try that Airflow failed without its result."""
        tasks = history.tasks_of(self.client, self.cluster, history.started_by_for(ti))
        task = next((t for t in tasks if history.try_of(t) == ti.try_number), None)
        if task is None or task.get("lastStatus") != TaskStatus.STOPPED:
            return task, None
        return task, self._judge(task)

    def _adopt(self, context: Context, earlier: Earlier) -> Any:
        """Take an earlier try's result (its ECS task succeeded, or failed with no retry left) as this try's,
        without starting another task."""
        task = earlier.task
        self.arn, launch = task["taskArn"], history.tag(task, history.LAUNCH_TAG) or self.launch
        self.log.warning(
            "The ECS task %s of try %s ended (%s), but Airflow did not record that try's result "
            "(apache/airflow#72716): this try adopts it instead of starting another task",
            self.arn,
            earlier.try_number,
            earlier.outcome.cls,
        )
        self._record_task(context, launch)
        results.alert_late_after_all(self, context, launch, task)
        return self._finish(context, earlier.outcome, launch, task, adopted_from=earlier.try_number)

    # -- judging --------------------------------------------------------------------------------------------

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        assert event is not None  # the trigger always sends one
        ended = cast("WaitEvent", event)  # the provider's signature; our trigger sent it
        ti = context["ti"]
        self.started_by = history.started_by_for(ti)
        self.arn = ended["task_arn"]
        launch = ti.xcom_pull(task_ids=ti.task_id, key="ecs_launch", map_indexes=ti.map_index) or self.launch
        task = ended["task"]
        if ended["status"] == WaitStatus.MISSING or task is None:
            return self._finish(context, judge_missing(self.arn), launch)
        return self._finish(context, self._judge(task), launch, task)

    def _finish(
        self,
        context: Context,
        outcome: Outcome,
        launch: str | None = None,
        task: EcsTask | None = None,
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
        lines = results.last_lines(self, outcome)
        output = results.parsed(lines[-1]) if lines else None
        decision = None if outcome.succeeded else self._decide(ti, outcome, earlier)
        final = decision is None or not decision.retry
        run = results.step_run(self, context, outcome, launch, final, task, lines, output, adopted_from)
        ti.xcom_push(key="ecs_outcome", value={**outcome.to_dict(), "launch": launch})
        self.step_run = run  # for the alert callbacks, even if reporting fails
        self.step_run = results.report(self, context, run, task)
        if decision is None:
            return output
        raise failure(outcome, decision, lines)

    def _decide(self, ti: Any, outcome: Outcome, earlier: int) -> Decision:
        """The retry decision for a failed try, counting the failures of its class since the last clear."""
        tries = self._tries(ti)
        if allowed_retries(outcome.cls, self.outcome_retries) > earlier:  # else no count changes the answer
            tasks = history.tasks_of(self.client, self.cluster, self.started_by or history.started_by_for(ti))
            others = [t for t in history.since_last_clear(tasks, tries) if t["taskArn"] != self.arn]
            earlier += sum(1 for t in others if self._judge(t).cls == outcome.cls)
        return decide(outcome.cls, earlier, self.outcome_retries, tries)
