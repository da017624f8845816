"""What a step's templates see when Airflow gives its run no logical date.

Airflow 3 accepts ``"logical_date": null`` when a run is triggered (REST API, the UI form without a date); its
templates then have no ``ds``, ``ts`` or ``logical_date``, and a catalog's ``JOB_DATE: "{{ ds }}"`` cannot
render. Such a run is taken to be for the moment it was asked to run after (``run_after``, when it was
triggered), so that it works like a scheduled run of that moment instead of failing on every step.
"""

from __future__ import annotations

from typing import Any

import jinja2
from pendulum import instance


def with_run_dates(context: Any) -> Any:
    """Fill in the date keys of a context whose run has no logical date from its ``run_after``; a context
    with a logical date is left as it is. Returns the context, changed in place."""
    if context.get("logical_date") is not None or context.get("dag_run") is None:
        return context
    moment = instance(context["dag_run"].run_after)
    ds, ts = moment.strftime("%Y-%m-%d"), moment.isoformat()
    ti = context.get("ti")
    context.update(
        logical_date=moment,
        ds=ds,
        ds_nodash=ds.replace("-", ""),
        ts=ts,
        ts_nodash=moment.strftime("%Y%m%dT%H%M%S"),
        ts_nodash_with_tz=ts.replace("-", "").replace(":", ""),
        data_interval_start=moment,
        data_interval_end=moment,
    )
    if ti is not None:
        context["task_instance_key_str"] = f"{ti.dag_id}__{ti.task_id}__{context['ds_nodash']}"
    return context


def failing_field(step: Any, context: Any, jinja_env: Any) -> str:
    """Which of ``step``'s template fields does not render (rendering a rendered field again changes
    nothing), for the error that fails the step."""
    for name in step.template_fields:
        try:
            step.render_template(getattr(step, name), context, jinja_env)
        except jinja2.TemplateError:
            return f"template error in {name!r}"
    return "template error"
