"""Lateness as the scheduler and triggerer see it: the run's Deadline Alert and the step's "running late"."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.tier.harness import Tier, started_by

pytestmark = pytest.mark.tier


def test_a_late_run_and_a_late_step_alert_while_they_still_run(tier: Tier):
    dag_id, run_id = "tier_late", "late-run"  # expected_duration 4s, deadline 8s, alerts to #tier-late
    tier.scenario({"started_by": started_by(dag_id, "run", run_id)}, {"duration": 25})
    tier.unpause(dag_id)
    tier.trigger(dag_id, run_id)

    def alerts() -> list[dict]:
        return [m for m in tier.slack_messages() if m["channel"] == "#tier-late"]

    # The scheduler finds the missed deadline and the triggerer runs its callback; the step's own trigger
    # sends its alert at 1.5x the expected duration.
    late = tier.wait(lambda: len(alerts()) == 2 and alerts(), 60, "both late alerts")
    assert tier.wait_for_run(dag_id, run_id)["state"] == "success"
    step, run = sorted(late, key=lambda m: "deadline" in m["text"])
    assert step["text"].startswith(f":turtle: Step running late: {dag_id} / run")
    assert run["text"].startswith(f":turtle: Run missed its deadline: {dag_id} ({run_id})")
    assert "0:00:08" in str(run["blocks"])
    (task,) = tier.ecs_tasks(dag_id, "run", run_id)
    assert all(datetime.fromisoformat(m["time"]).timestamp() < task["stoppedAt"] for m in late)
    assert len(alerts()) == 2  # success itself sends nothing
