"""A Spot interruption in the middle of a run, as the scheduler, executor and triggerer handle it."""

from __future__ import annotations

import pytest

from tests.tier.harness import Tier, started_by, tag

pytestmark = pytest.mark.tier


def test_a_spot_interruption_mid_run_ends_in_a_successful_on_demand_retry(tier: Tier):
    dag_id, run_id = "tier_spot", "spot-interrupted"  # fargate_spot, retries: 2, alerts on retry and failure
    interruption = {"duration": 4, "stop_code": "SpotInterruption", "exit_code": 143}
    match = {"started_by": started_by(dag_id, "run", run_id), "launch": "FARGATE_SPOT"}
    tier.scenario(match, interruption, times=1)
    messages_before = len(tier.slack_messages())
    tier.unpause(dag_id)
    tier.trigger(dag_id, run_id)

    assert tier.wait_for_run(dag_id, run_id)["state"] == "success"
    # The run's task instance shows both tries: the interrupted one and the on-demand one that succeeded.
    first_try, second_try = tier.tries(dag_id, run_id, "run")
    assert (first_try["try_number"], first_try["state"]) in {(1, "failed"), (1, "up_for_retry")}
    assert (second_try["try_number"], second_try["state"]) == (2, "success")
    first, second = tier.ecs_tasks(dag_id, "run", run_id)
    assert (tag(first, "ecsjobs:try"), first["capacityProviderName"]) == ("1", "FARGATE_SPOT")
    assert (tag(second, "ecsjobs:try"), second["launchType"], second["capacityProviderName"]) == (
        "2",
        "FARGATE",
        None,
    )
    assert [tag(t, "ecsjobs:launch") for t in (first, second)] == ["fargate_spot", "on_demand"]
    assert tier.xcom(dag_id, run_id, "run", "ecs_launch") == "on_demand"
    # One alert for the whole episode: the retry (the job alerts on failure and retry, not on recovery), in
    # the environment's channel, naming the cause and the interrupted ECS task.
    (alert,) = [m for m in tier.slack_messages()[messages_before:] if dag_id in m["text"]]
    assert alert["channel"] == "#batch-alerts"
    retry_alert = f":repeat: Step failed, will retry: {dag_id} / run (try 1, infrastructure_loss, "
    assert alert["text"].startswith(retry_alert)
    assert first["taskArn"] in alert["text"]
