"""A small evaluator of IAM's Allow semantics (action and resource wildcards, String and Arn conditions), to
judge the generated policies: no IAM service runs here."""

from __future__ import annotations

import fnmatch

# signing name -> IAM prefix
IAM_PREFIX = {"ecs": "ecs", "logs": "logs", "monitoring": "cloudwatch", "iam": "iam", "sqs": "sqs"}


BATCH_ACTIONS = {  # IAM authorizes a batch as its single action
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def allows(policy: dict, action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    """Whether an Allow statement grants ``action`` on ``resource`` in ``context`` (IAM's wildcards)."""
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in as_list(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in as_list(statement["Resource"])):
            continue
        conditions = statement.get("Condition", {})
        if all(
            _holds(op, key, expected, context or {})
            for op, keys in conditions.items()
            for key, expected in keys.items()
        ):
            return True
    return False


def _holds(operator: str, key: str, expected: str | list[str], context: dict[str, str]) -> bool:
    if key not in context:
        return False
    if operator in ("StringEquals", "ArnEquals"):
        return context[key] in as_list(expected)
    raise AssertionError(f"the evaluator does not know {operator}")
