"""The retry decisions as a table: one row per case, like the outcome table's rows
(``ecsjobs.decisions.retries``)."""

from __future__ import annotations

import pytest

from ecsjobs.decisions.outcome import Outcome
from ecsjobs.decisions.outcome import OutcomeClass as C
from ecsjobs.decisions.retries import (
    ADOPTION_RESERVE,
    Adopt,
    Earlier,
    Start,
    Tries,
    decide,
    lost_result_was_final,
    on_demand,
    plan_try,
)

STEP_RETRIES = 2
AIRFLOW_RETRIES = STEP_RETRIES + ADOPTION_RESERVE  # what the operator gives Airflow


def tries(number: int, cleared_after: int = 0) -> Tries:
    """Try ``number`` of a task instance last cleared after try ``cleared_after`` (0: never)."""
    return Tries(number=number, max_tries=cleared_after + AIRFLOW_RETRIES, retries=AIRFLOW_RETRIES)


@pytest.mark.parametrize(
    "cls, earlier, policy, at, retry, why",
    [
        (C.INFRASTRUCTURE_LOSS, 0, None, tries(1), True, "retry 1 of 3 for infrastructure_loss"),
        (C.INFRASTRUCTURE_LOSS, 2, None, tries(3), False, "no retry: the step's 2 retries are spent"),
        (C.INFRASTRUCTURE_LOSS, 3, None, tries(4), False, "no retry: 3 allowed for infrastructure_loss"),
        (C.APPLICATION_FAILURE, 0, None, tries(1), False, "no retry: 0 allowed for application_failure"),
        (C.APPLICATION_FAILURE, 0, {"application_failure": 1}, tries(1), True, "retry 1 of 1"),
        (C.APPLICATION_FAILURE, 1, {"application_failure": 1}, tries(2), False, "1 allowed"),
        (C.FAILED_TO_START, 1, None, tries(2), True, "retry 2 of 2 for failed_to_start"),
        (C.REJECTED, 0, {"rejected": 5}, tries(1), False, "no retry: 0 allowed for rejected"),
        (C.NO_CAPACITY, 0, None, tries(3), False, "the step's 2 retries are spent"),
        (C.NO_CAPACITY, 0, None, tries(5, cleared_after=4), True, "retry 1 of 3"),  # a clear resets them
    ],
)
def test_a_failed_try_is_retried_while_its_class_and_the_step_have_retries_left(
    cls, earlier, policy, at, retry, why
):
    decision = decide(cls, earlier, policy, at)
    assert decision.retry is retry
    assert why in decision.why


def test_the_adoption_reserve_is_never_spent_on_a_failure():
    last_own_try = tries(STEP_RETRIES + 1)
    assert not decide(C.INFRASTRUCTURE_LOSS, 0, None, last_own_try).retry
    assert last_own_try.max_tries + 1 - last_own_try.number == ADOPTION_RESERVE  # tries Airflow still has


@pytest.mark.parametrize(
    "max_tries, number, cleared_after",
    [(4, 1, 0), (4, 3, 0), (6, 3, 2), (6, 5, 2), (9, 6, 5), (2, 9, 0)],
    ids=[
        "never cleared, first try",
        "never cleared, a retry",
        "cleared after try 2, the try after it",
        "cleared after try 2, a retry after it",
        "cleared after try 5",
        "max_tries under the retries: never cleared",
    ],
)
def test_a_clear_is_read_from_max_tries(max_tries, number, cleared_after):
    assert Tries(number=number, max_tries=max_tries, retries=AIRFLOW_RETRIES).cleared_after == cleared_after


@pytest.mark.parametrize(
    "cls, failures, policy, try_number, at, final",
    [
        (C.APPLICATION_FAILURE, 1, None, 1, tries(2), True),  # no retry for it: Airflow lost the failure
        (C.APPLICATION_FAILURE, 1, {"application_failure": 1}, 1, tries(2), False),  # a real retry
        (C.INFRASTRUCTURE_LOSS, 1, None, 1, tries(2), False),
        (C.INFRASTRUCTURE_LOSS, 1, None, 3, tries(4), True),  # the step's last own try
        (C.INFRASTRUCTURE_LOSS, 4, None, 2, tries(3), True),  # more than its class allows
    ],
)
def test_a_lost_failure_is_final_when_it_left_no_retry(cls, failures, policy, try_number, at, final):
    assert lost_result_was_final(cls, failures, policy, try_number, at) is final


@pytest.mark.parametrize(
    "spot, fallback_after, failures, expected",
    [(True, 1, 0, False), (True, 1, 1, True), (True, 2, 1, False), (True, 0, 5, False), (False, 1, 3, False)],
)
def test_spot_falls_back_to_on_demand_after_its_failures(spot, fallback_after, failures, expected):
    assert on_demand(spot, fallback_after, failures) is expected


def earlier(try_number: int, cls: C, on_demand: bool = False) -> Earlier:
    """An earlier try's stopped ECS task that ended as ``cls``."""
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/c/try{try_number}"
    outcome = Outcome(cls, arn, 0 if cls is C.SUCCEEDED else 1, "app", None, str(cls))
    return Earlier({"taskArn": arn}, try_number, on_demand, outcome)


@pytest.mark.parametrize(
    "at, history, policy, plan",
    [
        pytest.param(tries(1), [], None, Start(0, 0), id="first try: start"),
        pytest.param(tries(2), [earlier(1, C.SUCCEEDED)], None, "adopt 1", id="a lost success: adopt it"),
        pytest.param(
            tries(3),
            [earlier(1, C.INFRASTRUCTURE_LOSS), earlier(2, C.SUCCEEDED)],
            None,
            "adopt 2",
            id="the latest success is adopted",
        ),
        pytest.param(
            tries(2), [earlier(1, C.APPLICATION_FAILURE)], None, "adopt 1", id="a final failure: adopt"
        ),
        pytest.param(
            tries(2),
            [earlier(1, C.APPLICATION_FAILURE)],
            {"application_failure": 1},
            Start(0, 0),
            id="a failure with a retry left: start",
        ),
        pytest.param(
            tries(3),
            [earlier(1, C.INFRASTRUCTURE_LOSS), earlier(2, C.INFRASTRUCTURE_LOSS, on_demand=True)],
            None,
            Start(1, 0),
            id="only Spot tasks count as Spot losses",
        ),
        pytest.param(tries(3), [earlier(2, C.FAILED_TO_START)], None, Start(0, 1), id="try 1 had no task"),
        pytest.param(tries(4, cleared_after=3), [], None, Start(0, 0), id="after a clear: start afresh"),
    ],
)
def test_a_try_adopts_a_lost_result_or_starts_its_own_task(at, history, policy, plan):
    planned = plan_try(at, history, policy)
    if isinstance(plan, str):
        assert isinstance(planned, Adopt) and f"adopt {planned.earlier.try_number}" == plan
    else:
        assert planned == plan
