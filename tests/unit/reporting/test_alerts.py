"""Slack alert text (``ecsjobs.reporting.alerts``): a job's own text cannot address a channel or forge a link.
The alerts of real runs: ``tests/integration/test_alerts.py``."""

from __future__ import annotations


def test_slack_markup_in_job_text_is_escaped():
    from ecsjobs.reporting.alerts import escape

    assert escape("<!channel> a&b <http://x|y>") == "&lt;!channel&gt; a&amp;b &lt;http://x|y&gt;"
