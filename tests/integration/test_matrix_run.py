"""A matrix job run end to end: params from the trigger choose the fan-out, each ECS task gets its values."""

from __future__ import annotations

from datetime import UTC, datetime

from local.settings import REPO


def test_a_triggered_run_fans_out_over_the_params_it_was_given(aws, airflow_db, monkeypatch):
    from ecsjobs.build.loader import load_dags

    monkeypatch.setenv("ECSJOBS_CONFIG_DIR", str(REPO / "config"))
    aws.post("/_local/scenarios", {"match": {"family": "report-generator"}, "scenario": {"duration": 0.5}})
    dag = load_dags()["report_generator"]
    # dag.test() does not store Deadline Alerts in the DB and then fails at the run's end (Airflow 3.2.1 and
    # 3.3.2); the scheduler does store them: the real-components tier runs this job with its deadline.
    dag.deadline = None

    dag_run = dag.test(
        logical_date=datetime(2026, 3, 10, 6, tzinfo=UTC),
        run_conf={"customers": ["acme", "wayne"], "report_type": "detailed"},
    )

    assert dag_run.state == "success"
    mapped = sorted(
        (ti.map_index, ti.state) for ti in dag_run.get_task_instances() if ti.task_id == "each.run"
    )
    assert mapped == [(0, "success"), (1, "success")]
    sent = [t for t in aws.get("/_local/tasks") if t["family"] == "report-generator"]
    containers = [t["overrides"]["containerOverrides"][0] for t in sent]
    assert sorted(c["command"][4] for c in containers) == ["acme", "wayne"]
    for container in containers:
        customer = container["command"][4]
        assert container["command"][5:] == ["--date", "2026-03-10", "--type", "detailed"]
        assert container["environment"] == [{"name": "CUSTOMER", "value": customer}]
    assert {t["revision"] for t in sent} == {12}  # the pinned report-generator:12
