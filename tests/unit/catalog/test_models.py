"""The catalog's retry policy (``ecsjobs.catalog.models.RetryPolicy``) speaks the outcome classes of
``ecsjobs.decisions.outcome``: a class name in a job file is one the decisions know, and it overrides only
its own class."""

from __future__ import annotations

from typing import get_args

from ecsjobs.catalog import models
from ecsjobs.decisions.outcome import DEFAULT_RETRIES, allowed_retries
from ecsjobs.decisions.outcome import OutcomeClass as C


def test_default_retries_cover_every_failure_class_under_the_catalog_names():
    catalog_names = set(get_args(models.OutcomeClass))

    assert set(DEFAULT_RETRIES) == set(C) - {C.SUCCEEDED}
    assert catalog_names == set(models.RetryPolicy.model_fields)
    assert catalog_names <= {cls.value for cls in DEFAULT_RETRIES}


def test_a_retry_policy_overrides_the_default_for_its_class_only():
    policy = models.RetryPolicy(application_failure=2, infrastructure_loss=0)

    assert allowed_retries(C.APPLICATION_FAILURE, policy) == 2
    assert allowed_retries(C.INFRASTRUCTURE_LOSS, policy) == 0
    assert allowed_retries(C.NO_CAPACITY, policy) == 3
    assert allowed_retries(C.MISSING, policy) == 0
    assert allowed_retries(C.SUCCEEDED) == 0
