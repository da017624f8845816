"""Starting a try's ECS task: its RunTask request, and RunTask until ECS places the task, falling back from
Spot to on demand when Spot has no capacity.

``step`` is the ``EcsJobOperator`` (its RunTask fields, ECS client and log); nothing here needs Airflow.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.amazon.aws.utils.identifiers import generate_uuid
from botocore.exceptions import ClientError

from ecsjobs.aws import is_transient
from ecsjobs.decisions.outcome import Outcome, OutcomeClass, judge_rejected, judge_run_task_failures
from ecsjobs.decisions.retries import on_demand
from ecsjobs.execution.history import LAUNCH_TAG, TRY_TAG

if TYPE_CHECKING:
    from types_boto3_ecs.type_defs import RunTaskRequestTypeDef, RunTaskResponseTypeDef

CAPACITY_RETRY_DELAYS = (5, 15)  # seconds between RunTask attempts on the same capacity within one try
# RunTask: "A total of 8192 characters are allowed for overrides", JSON formatting included.
MAX_OVERRIDES_LENGTH = 8192


@dataclass(frozen=True)
class Started:
    """RunTask placed the try's task (``step.arn``) on ``launch``; or it did not, and ``failed`` says why."""

    launch: str
    failed: Outcome | None = None


def start(step: Any, try_number: int, spot_losses: int) -> Started:
    """RunTask for try ``try_number``, on Spot until Spot has failed the step ``step.fallback_after`` times
    (``spot_losses`` earlier, or capacity failures in this try), then on demand. No capacity on demand is
    tried again after ``CAPACITY_RETRY_DELAYS``; any other failure ends the try."""
    spot = bool(step.capacity_provider_strategy and step.on_demand is not None)
    use_on_demand = on_demand(spot, step.fallback_after, spot_losses)
    capacity_failures = 0
    while True:
        launch = "on_demand" if use_on_demand else step.launch
        # One token per try and placement: a resumed try gets its own task back from RunTask itself.
        step.client_token = generate_uuid(step.started_by, str(try_number), launch)
        request = run_task_request(step, on_demand=use_on_demand, try_number=try_number, launch=launch)
        response = _run_task(step, request)
        if isinstance(response, Outcome):
            return Started(launch, response)
        if response["tasks"]:
            step.arn = response["tasks"][0]["taskArn"]
            step.log.info("Started ECS task %s on %s", step.arn, _launch_text(request))
            return Started(launch)
        outcome = judge_run_task_failures(response["failures"])
        step.log.warning("RunTask started no task: %s", outcome.describe())
        capacity_failures += outcome.cls == OutcomeClass.NO_CAPACITY
        if not use_on_demand and on_demand(spot, step.fallback_after, capacity_failures):
            step.log.warning("Spot has no capacity: falling back to on-demand for this try")
            use_on_demand = True
        elif outcome.cls == OutcomeClass.NO_CAPACITY and capacity_failures <= len(CAPACITY_RETRY_DELAYS):
            time.sleep(CAPACITY_RETRY_DELAYS[capacity_failures - 1])
        else:
            return Started(launch, outcome)


def _run_task(step: Any, request: RunTaskRequestTypeDef) -> RunTaskResponseTypeDef | Outcome:
    """RunTask's response, or ``rejected`` for a request ECS refuses (a missing task definition, an invalid
    parameter, overrides over 8,192 characters, access denied): no retry can fix it. Throttling and server
    errors that outlast botocore's retries raise, leaving the step to Airflow's retries."""
    length = len(json.dumps(request["overrides"], separators=(",", ":")))
    if length > MAX_OVERRIDES_LENGTH:
        return judge_rejected(
            f"the RunTask overrides are {length} characters; ECS allows {MAX_OVERRIDES_LENGTH}"
        )
    try:
        response: RunTaskResponseTypeDef = step.client.run_task(**request)
        return response
    except ClientError as error:
        if is_transient(error):
            raise
        details = error.response.get("Error", {})
        return judge_rejected(
            f"RunTask refused: {details.get('Code', 'ClientError')}: {details.get('Message', error)}"
        )


def run_task_request(
    step: Any, on_demand: bool = False, try_number: int | None = None, launch: str | None = None
) -> RunTaskRequestTypeDef:
    """The RunTask arguments of ``step`` (what ``python -m ecsjobs render`` prints, too)."""
    request: dict[str, Any] = {
        "cluster": step.cluster,
        "taskDefinition": step.task_definition,
        "overrides": step.overrides,
        "startedBy": step.started_by or step.owner,
    }
    placement = (
        step.on_demand
        if on_demand and step.on_demand
        else {"launch_type": step.launch_type, "capacity_provider_strategy": step.capacity_provider_strategy}
    )
    if placement.get("capacity_provider_strategy"):
        request["capacityProviderStrategy"] = placement["capacity_provider_strategy"]
    elif placement.get("launch_type"):
        request["launchType"] = placement["launch_type"]
    optional = {
        "platformVersion": step.platform_version,
        "group": step.group,
        "networkConfiguration": step.network_configuration,
        "propagateTags": step.propagate_tags,
        "clientToken": step.client_token,
    }
    request.update({key: value for key, value in optional.items() if value is not None})
    tags = dict(step.tags or {})
    if try_number is not None:
        tags |= {TRY_TAG: str(try_number), LAUNCH_TAG: launch or step.launch}
    if tags:
        request["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    return cast("RunTaskRequestTypeDef", request)  # built from the step's fields, as the catalog checked them


def with_matrix_environment(
    overrides: dict[str, Any], container: str, matrix: dict[str, Any]
) -> dict[str, Any]:
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


def _launch_text(request: RunTaskRequestTypeDef) -> str:
    strategy = request.get("capacityProviderStrategy")
    return (
        f"capacity provider {strategy[0]['capacityProvider']}" if strategy else request.get("launchType", "?")
    )
