"""The records-processed query a step sends (``ecsjobs.reporting.metrics``): narrowed to the step's own log
stream. The local AWS cannot run Logs Insights queries; the metrics of real runs:
``tests/integration/test_alerts.py``."""

from __future__ import annotations


def test_a_logs_insights_query_is_narrowed_to_the_tasks_stream():
    """Local AWS cannot run Logs Insights queries, so only the query the step would send is checked."""
    from ecsjobs.reporting.metrics import insights_query

    query = "fields @message\n| filter @message like /done/\n| stats count(*) as records, sum(e) as errors\n"
    assert insights_query(query, "ecs/trainer/abc123") == (
        'filter @logStream = "ecs/trainer/abc123"\n| fields @message\n| filter @message like /done/\n'
        "| stats count(*) as records, sum(e) as errors"
    )
