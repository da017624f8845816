"""Fan-out: the combinations of a job's matrix, computed when the run starts.

An axis is a list of values, or a template such as ``{{ params.customers }}`` rendered to a native list, so a
UI trigger can choose the customers. Each combination becomes one instance of the job's mapped task group.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import jinja2
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException
from jinja2.nativetypes import NativeEnvironment

from ecsjobs.catalog.models import MAX_COMBINATIONS
from ecsjobs.execution.templating import with_run_dates


def combinations(axes: Mapping[str, list[Any] | str], context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every ``{axis: value}`` combination; raises ``ValueError`` for an axis that gives no list."""
    native = NativeEnvironment()
    values: dict[str, list[Any]] = {}
    for axis, spec in axes.items():
        rendered = native.from_string(spec).render(**context) if isinstance(spec, str) else spec
        if isinstance(rendered, str | int | float | bool):
            rendered = [rendered]
        if not isinstance(rendered, list) or not rendered:
            raise ValueError(f"matrix axis {axis!r} must give a non-empty list, got {rendered!r}")
        values[axis] = rendered
    result = [dict(zip(values, combo, strict=True)) for combo in itertools.product(*values.values())]
    if len(result) > MAX_COMBINATIONS:
        raise ValueError(f"the matrix has {len(result)} combinations; at most {MAX_COMBINATIONS}")
    return result


class MatrixOperator(BaseOperator):
    """Return this run's matrix combinations; the job's mapped task group expands over them.

    Retried by default (``RETRIES``): it only computes, so running it again is safe, and a worker lost
    under it (a Celery worker replaced, a metadata DB failover) would otherwise fail the whole run.
    """

    ui_color = "#e7f5ff"
    RETRIES = 2

    def __init__(self, *, axes: dict[str, list[Any] | str], **kwargs: Any) -> None:
        kwargs.setdefault("retries", self.RETRIES)
        kwargs.setdefault("retry_delay", timedelta(seconds=5))
        super().__init__(**kwargs)
        self.axes = axes

    def execute(self, context: Any) -> list[dict[str, Any]]:
        try:
            result = combinations(self.axes, with_run_dates(context))
        except (ValueError, jinja2.TemplateError) as err:  # no retry makes a matrix valid
            raise AirflowFailException(f"matrix: {err}") from None
        self.log.info("matrix: %d combination(s): %s", len(result), result)
        return result
