"""Pure decisions over the facts of a run: how an ECS task ended (the outcome table) and whether, where and
when a step tries again. No Airflow, no AWS calls: table-tested."""
