"""What a run leaves behind: its step-run facts, cost, audit record, CloudWatch metrics and Slack alerts,
the once-only claims behind them, and the fleet report over many runs."""
