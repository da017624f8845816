"""Literal secrets written into a job file, found by name and by value.

Container overrides are visible to anyone who can describe the ECS task, and the catalog lives in Git: a
secret belongs in the task definition's ``secrets`` (Secrets Manager or an SSM parameter). Templates
(``{{ ... }}``) are left out of the check: they render at run time from Airflow connections and variables.
"""

from __future__ import annotations

import re

from ecsjobs.catalog.models import TEMPLATE

SECRET_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY")
# Values that are credentials whatever the variable is called: what secret scanners look for first.
SECRET_VALUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[0-9A-Za-z]{30,}|github_pat_[0-9A-Za-z_]{30,})")),
    ("a GitLab token", re.compile(r"\bglpat-[0-9A-Za-z_-]{20,}")),
    ("an API key (sk-...)", re.compile(r"\bsk-(?:proj-|live-|test-)?[0-9A-Za-z_-]{20,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("a password in a URL", re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@")),
)
# --password=x, --db-password x, --token, --secret, --api-key, --access-key (-p is too short to tell)
SECRET_OPTION = re.compile(
    r"^--?[a-z0-9-]*(?:password|passwd|secret|token|api-key|access-key)(?:=(.*))?$", re.IGNORECASE
)
ADVICE = "reference it from the task definition's `secrets` (Secrets Manager or SSM parameter) instead"


def environment_leak(name: str, value: str) -> str | None:
    """Why an environment variable holds a literal secret, or None."""
    literal = TEMPLATE.sub("", value).strip()
    if not literal:
        return None
    words = re.split(r"[^A-Z0-9]+", name.upper())
    if any(word.endswith(secret) for word in words for secret in SECRET_WORDS):
        return f"{name!r} looks like a secret with a literal value; {ADVICE}"
    return value_leak(literal)


def value_leak(text: str) -> str | None:
    """Why ``text`` (templates removed) contains a credential, or None."""
    literal = TEMPLATE.sub("", text)
    for what, pattern in SECRET_VALUES:
        if pattern.search(literal):
            return f"the value contains {what}; {ADVICE}"
    return None


def command_leak(command: list[str]) -> tuple[int, str] | None:
    """The index of the first ``command`` argument that passes a secret, and why, or None.

    ``--password=x`` and ``--password x`` pass one when ``x`` is a literal; so does any argument whose value
    matches :data:`SECRET_VALUES`. A template or an environment reference (``$DB_PASSWORD``) is fine.
    """
    for index, argument in enumerate(command):
        if match := SECRET_OPTION.match(argument):
            value = match.group(1) if match.group(1) is not None else _next(command, index)
            if value is not None and _literal(value):
                return index, f"{argument.split('=')[0]!r} passes a literal secret; {ADVICE}"
        elif reason := value_leak(argument):
            return index, reason
    return None


def _next(command: list[str], index: int) -> str | None:
    return command[index + 1] if index + 1 < len(command) else None


def _literal(value: str) -> bool:
    rest = TEMPLATE.sub("", value).strip()
    return bool(rest) and not rest.startswith("$")
