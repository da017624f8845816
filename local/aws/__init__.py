"""The local AWS: moto's server with ECS tasks that behave like batch jobs, for the stack and the tests.

``python -m local.aws`` serves it (``server``); ``ecs_sim`` and ``scenarios`` make tasks run on a wall-clock
timeline with real exit codes and logs, ``app`` adds the control API under ``/_local`` (scenario ``rules``,
``faults``, call records), ``ids`` and ``query_definitions`` fill gaps in moto, and ``sqs_release`` has a
released SQS message wake the long polls waiting for one, as SQS does.
"""
