"""Runs triggered by hand: with parameters, as the UI's trigger form sends them, and pipelines of steps.

Every run goes through ``POST /api/v2/dags/{id}/dagRuns`` (what the form posts, after unpausing the DAG as
its "Unpause on trigger" box does) and is run by the real scheduler, executor and triggerer.
"""

from __future__ import annotations

import json

import pytest

from local.api import ApiError
from tests.tier.harness import Tier, environment, started_by, tag

pytestmark = pytest.mark.tier


INVALID = [  # (parameter, a value its schema refuses, unlike any value a valid run passes)
    ("report_type", "everything"),  # not in its enum
    ("customers", "yotta"),  # a string, not an array
    ("customers", []),  # the matrix needs at least one value
    ("customers", [f"yotta-{i}" for i in range(3000)]),  # more than the matrix's 1,024 combinations
]


def test_a_trigger_with_parameters_fans_out_over_the_given_values_and_invalid_ones_start_nothing(tier: Tier):
    dag_id = "report_generator"  # matrix over params.customers; command: ... --type {{ params.report_type }}
    tier.unpause(dag_id)
    for number, (param, value) in enumerate(INVALID):
        with pytest.raises(ApiError) as rejected:
            tier.trigger(dag_id, f"invalid-{number}", {param: value}, logical_date="2026-05-05T06:00:00Z")
        assert rejected.value.status == 400
        assert param in str(rejected.value.body)[:2000]
        with pytest.raises(ApiError) as missing:
            tier.run(dag_id, f"invalid-{number}")
        assert missing.value.status == 404  # no run was created, so nothing can start

    run_id, conf = "params-valid", {"report_type": "detailed", "customers": ["northwind", "contoso"]}
    tier.trigger(dag_id, run_id, conf, logical_date="2026-05-04T06:00:00Z")

    assert tier.wait_for_run(dag_id, run_id)["state"] == "success"
    commands = {}
    for map_index in (0, 1):
        (task,) = tier.ecs_tasks(dag_id, "each.run", run_id, map_index)
        command = task["overrides"]["containerOverrides"][0]["command"]
        commands[command[command.index("--customer") + 1]] = command
    assert commands == {
        customer: [
            *("python", "-m", "reports.build", "--customer", customer),
            *("--date", "2026-05-04", "--type", "detailed"),
        ]
        for customer in ("northwind", "contoso")
    }
    # The scheduler has run this job since the rejected triggers: no ECS task ever saw their values.
    overrides = [json.dumps(t["overrides"]) for t in tier.aws("GET", "/_local/tasks")]
    assert [o for o in overrides if "everything" in o or "yotta" in o] == []


def test_a_pipeline_stops_at_its_failed_step_and_finishes_once_that_step_is_cleared(tier: Tier):
    dag_id, run_id = "etl_pipeline", "pipeline-cleared"  # extract -> transform -> load
    tier.scenario({"started_by": started_by(dag_id, "transform", run_id)}, {"exit_code": 2}, times=1)
    tier.unpause(dag_id)
    tier.trigger(dag_id, run_id, logical_date="2026-06-01T03:00:00Z")

    assert tier.wait_for_run(dag_id, run_id)["state"] == "failed"
    assert _states(tier, dag_id, run_id) == {
        "extract": "success",
        "transform": "failed",
        "load": "upstream_failed",
    }
    assert _ecs_tries(tier, dag_id, run_id) == {"extract": ["1"], "transform": ["1"], "load": []}

    cleared = tier.api.call(
        "POST",
        f"/api/v2/dags/{dag_id}/clearTaskInstances",
        {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": ["transform"],
            "include_downstream": True,
            "only_failed": False,
        },
    )
    cleared_steps = {ti["task_id"] for ti in cleared["task_instances"]} & {"extract", "transform", "load"}
    assert cleared_steps == {"transform", "load"}

    assert tier.wait_for_run(dag_id, run_id)["state"] == "success"
    assert _states(tier, dag_id, run_id) == {"extract": "success", "transform": "success", "load": "success"}
    # extract is not run again; transform runs a second try; load runs once, after it.
    assert _ecs_tries(tier, dag_id, run_id) == {"extract": ["1"], "transform": ["1", "2"], "load": ["1"]}
    extract, transform, load = (tier.ecs_tasks(dag_id, s, run_id) for s in ("extract", "transform", "load"))
    assert extract[0]["stoppedAt"] <= transform[0]["createdAt"]
    assert transform[1]["stoppedAt"] <= load[0]["createdAt"]
    assert {environment(t)["ETL_STAGE"] for t in transform} == {"transform"}


def _states(tier: Tier, dag_id: str, run_id: str) -> dict[str, str]:
    steps = ("extract", "transform", "load")  # the job's steps, whatever else the DAG runs after them
    return {t["task_id"]: t["state"] for t in tier.task_instances(dag_id, run_id) if t["task_id"] in steps}


def _ecs_tries(tier: Tier, dag_id: str, run_id: str) -> dict[str, list[str]]:
    """Per step, the ``ecsjobs:try`` tag of each ECS task it started, oldest first."""
    return {
        step: [tag(task, "ecsjobs:try") for task in tier.ecs_tasks(dag_id, step, run_id)]
        for step in ("extract", "transform", "load")
    }
