"""Exceptions that cross a process boundary (a Celery worker's result, the DAG processor's import errors, a
subprocess) keep their fields through pickling, not only their message."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from ecsjobs.catalog.problems import CatalogError, Problem
from ecsjobs.catalog.yamlfile import YamlFileError
from ecsjobs.decisions.outcome import Outcome, OutcomeClass
from ecsjobs.execution.failures import StepFailed, StepFailedFinally

OUTCOME = Outcome(OutcomeClass.OUT_OF_MEMORY, "arn:aws:ecs:us-east-1:1:task/c/abc", 137, "app", None, "OOM")
PROBLEM = Problem(Path("config/jobs/x.yaml"), 3, 5, "schedule", "not a cron expression")


@pytest.mark.parametrize(
    ("error", "fields"),
    [
        pytest.param(StepFailed("out of memory", OUTCOME), {"outcome": OUTCOME}, id="StepFailed"),
        pytest.param(
            StepFailedFinally("no retry left", OUTCOME), {"outcome": OUTCOME}, id="StepFailedFinally"
        ),
        pytest.param(CatalogError([PROBLEM]), {"problems": [PROBLEM]}, id="CatalogError"),
        pytest.param(
            YamlFileError(Path("config/jobs/x.yaml"), 2, 1, "mapping values are not allowed here"),
            {"path": Path("config/jobs/x.yaml"), "line": 2, "column": 1},
            id="YamlFileError",
        ),
    ],
)
def test_an_exception_keeps_its_class_message_and_fields_through_pickling(error: Exception, fields: dict):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert {name: getattr(copy, name) for name in fields} == fields
