"""Putting it in an AWS account: monitoring as code (alarms, dashboard, queries), the task events route,
the MWAA bundle, reachability checks and the IAM policy."""
