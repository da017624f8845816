"""Waiting on an ECS task without a worker slot: the trigger, the shared poller of the triggerer, and the
ECS task state change events it reads from SQS."""
