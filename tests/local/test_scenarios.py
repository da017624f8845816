"""A simulated task's timeline (``local.aws.scenarios.Plan``): its lastStatus at any time, and the state
changes the local ECS sends as events, each as of its own time however late the ticker asks."""

from __future__ import annotations

from local.aws.scenarios import Plan, resolve_scenario

TIMELINE = ["PROVISIONING", "PENDING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"]


def _plan(**scenario: float) -> Plan:
    return Plan.build(resolve_scenario(scenario, 3.0), created=100.0, essential={"app": True})


def test_every_state_is_a_change_at_the_time_it_began_even_when_asked_for_late():
    plan = _plan(provisioning=1, pending=1, duration=2, stopping=3)

    changes = plan.changes(float("-inf"), 1_000)

    assert [status for status, _ in changes] == TIMELINE
    assert [at for _, at in changes] == [100, 101, 102, 104, 105, 106, 107]
    assert all(plan.status(at) == status for status, at in changes)
    assert plan.status(104.999) == "DEACTIVATING" and plan.status(99) == "PROVISIONING"


def test_changes_are_reported_once_across_consecutive_windows():
    plan = _plan(provisioning=1, pending=1, duration=2, stopping=3)

    windows = [plan.changes(after, until) for after, until in [(-1, 100.5), (100.5, 104), (104, 200)]]

    assert [[status for status, _ in window] for window in windows] == [
        ["PROVISIONING"],
        ["PENDING", "RUNNING", "DEACTIVATING"],
        ["STOPPING", "DEPROVISIONING", "STOPPED"],
    ]


def test_a_state_of_no_length_is_never_taken_on():
    plan = _plan(provisioning=1, pending=0, duration=2, stopping=0)

    assert [status for status, _ in plan.changes(0, 1_000)] == ["PROVISIONING", "RUNNING", "STOPPED"]
    assert plan.status(101) == "RUNNING" and plan.status(103) == "STOPPED"


def test_a_task_that_never_started_skips_running():
    plan = _plan(provisioning=1, pending=1, stopping=3, stop_code="TaskFailedToStart")

    assert "RUNNING" not in [status for status, _ in plan.changes(0, 1_000)]
    assert plan.status(102.5) == "DEACTIVATING"
