"""DAGs generated from the shipped catalog: shape, params, mapping, schedules, and how Airflow loads them."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from ecsjobs.build.factory import build_dags
from ecsjobs.build.loader import load_dags
from ecsjobs.build.matrix import MatrixOperator
from ecsjobs.catalog.loading import load_catalog
from ecsjobs.execution.operators import EcsJobOperator
from local.settings import REPO


@pytest.fixture(scope="module")
def dags():
    return build_dags(load_catalog(REPO / "config", "local"))


def upstream(dag, task_id: str) -> set[str]:
    return set(dag.get_task(task_id).upstream_task_ids)


def test_one_dag_per_job_file(dags):
    assert set(dags) == {p.stem for p in (REPO / "config" / "jobs").glob("*.yaml")}
    assert len(dags) == 15


def test_pipeline_steps_follow_depends_on(dags):
    etl = dags["etl_pipeline"]
    assert upstream(etl, "transform") == {"extract"} and upstream(etl, "load") == {"transform"}
    warehouse = dags["warehouse_etl"]
    assert upstream(warehouse, "extract_orders") == upstream(warehouse, "extract_customers") == set()
    assert upstream(warehouse, "transform") == {"extract_orders", "extract_customers"}
    assert upstream(warehouse, "refresh_aggregates") == {"load"}


def test_launch_settings_reach_the_operator(dags):
    etl = dags["etl_pipeline"]
    extract, transform, load = (etl.get_task(t) for t in ("extract", "transform", "load"))
    assert extract.capacity_provider_strategy == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert extract.launch_type is None
    assert transform.capacity_provider_strategy == [{"capacityProvider": "ec2-spot", "weight": 1}]
    assert transform.overrides["cpu"] == "4096" and transform.overrides["memory"] == "16384"
    assert load.launch_type == "FARGATE" and not load.capacity_provider_strategy
    assert dags["gdpr_deletion"].get_task("run").launch_type == "EC2"


def test_every_step_is_deferrable_with_its_container_and_logs(dags):
    for dag in dags.values():
        for task in dag.tasks:
            if isinstance(task, EcsJobOperator):
                assert task.deferrable
                assert task.container_name
                assert task.awslogs_group and task.awslogs_stream_prefix
                assert task.botocore_config["retries"]["mode"] == "adaptive"
                assert task.pool == "ecs_batch-jobs"  # caps concurrent ECS tasks per cluster


def test_named_network_and_defaults(dags):
    awsvpc = dags["gdpr_deletion"].get_task("run").network_configuration["awsvpcConfiguration"]
    assert awsvpc["securityGroups"] == ["sg-0local00000000002"]
    default = dags["data_processor"].get_task("run")
    assert default.network_configuration["awsvpcConfiguration"]["securityGroups"] == ["sg-0local00000000001"]
    assert default.step_retries == 2  # config/defaults.yaml
    assert default.retries == 4  # and Airflow's two more, only ever used to adopt a lost result
    assert dags["data_quality_checks"].get_task("run").awslogs_group == "/batch/dq-checks"


def test_params_become_the_trigger_form(dags):
    params = dags["report_generator"].params
    report_type = params.get_param("report_type")
    assert report_type.value == "summary"
    assert report_type.schema["enum"] == ["summary", "detailed"]
    assert report_type.description == "Level of detail of the reports."
    from_date = dags["backfill_reprocess"].params.get_param("from_date")
    assert from_date.schema["format"] == "date"


def test_a_param_that_feeds_the_matrix_is_bounded_by_it(dags):
    """An empty list or one over the combination cap is refused by the form and the REST API (which validate
    the ``Param``), before a run exists."""
    from airflow.sdk.definitions.param import ParamValidationError

    customers = dags["report_generator"].params.get_param("customers")
    assert (customers.schema["minItems"], customers.schema["maxItems"]) == (1, 1024)
    assert customers.resolve(["a"] * 1024) == ["a"] * 1024
    for refused in ([], ["a"] * 1025):
        with pytest.raises(ParamValidationError):
            customers.resolve(refused)


def test_matrix_fans_out_in_a_mapped_task_group(dags):
    dag = dags["report_generator"]
    assert isinstance(dag.get_task("matrix"), MatrixOperator)
    step = dag.get_task("each.run")
    assert upstream(dag, "each.run") == {"matrix"}
    assert step.task_group.group_id == "each"
    assert step.get_closest_mapped_task_group() is not None
    assert dag.get_task("matrix").axes == {"customer": "{{ params.customers }}"}
    assert dag.get_task("matrix").retries == 2, "a worker lost under it must not fail the run"


def test_schedules_and_timezones(dags):
    assert type(dags["backfill_reprocess"].timetable).__name__ == "NullTimetable"
    partner = dags["partner_feed_export"]
    assert str(partner.timezone) in ("America/New_York", "Timezone('America/New_York')")
    assert dags["regional_sales_rollup"].catchup is True
    assert dags["etl_pipeline"].max_active_runs == 1


def test_serialized_dags_keep_their_schedules(dags):
    """The scheduler only sees serialized DAGs: every timetable (plugin ones included) must round-trip."""
    from airflow.serialization.serialized_objects import DagSerialization

    after = datetime(2026, 1, 30, tzinfo=UTC)
    for dag_id, dag in dags.items():
        restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        assert type(restored.timetable).__name__ == type(dag.timetable).__name__, dag_id
        if dag_id == "month_end_close":
            from airflow.timetables.base import DataInterval, TimeRestriction

            info = restored.timetable.next_dagrun_info(
                last_automated_data_interval=DataInterval.exact(after),
                restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
            )
            assert info.logical_date == datetime(2026, 1, 31, 22, tzinfo=UTC)


def test_a_worker_reads_and_builds_only_the_dag_it_runs(tmp_path: Path, monkeypatch):
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "jobs" / "zz_broken.yaml").write_text("not: [valid\n")
    monkeypatch.setenv("ECSJOBS_CONFIG_DIR", str(config))
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "etl_pipeline")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", "load")
    assert list(load_dags()) == ["etl_pipeline"]
    assert load_catalog(config, "local", only="etl_pipeline").broken == {}  # other job files are not read


def test_an_airflow_variable_overrides_the_environment(monkeypatch):
    monkeypatch.setenv("ECSJOBS_ENV", "local")
    monkeypatch.setenv("AIRFLOW_VAR_ECSJOBS_ENV", "prod")
    assert load_dags()["data_processor"].get_task("run").cluster == "batch-jobs-cluster"


def test_a_broken_job_file_is_an_import_error_and_the_other_dags_load(tmp_path: Path, monkeypatch):
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    with (config / "jobs" / "inventory_sync.yaml").open("a") as f:
        f.write("retires: 3\n")
    monkeypatch.setenv("ECSJOBS_CONFIG_DIR", str(config))

    bag = DagBag(dag_folder=str(REPO / "dags"))

    jobs = {p.stem for p in (REPO / "config" / "jobs").glob("*.yaml")}
    assert set(bag.dag_ids) == jobs - {"inventory_sync"} | {"ecsjobs_monitoring_sync"}
    (path, error), *rest = bag.import_errors.items()
    assert rest == []
    assert path.endswith("dags/catalog_errors.py")
    assert "inventory_sync.yaml:13:1: retires: unknown key 'retires'; did you mean 'retries'?" in error
