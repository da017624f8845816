"""Running a step: the operator, its ECS task history across tries, task definitions, the templating of
runs without a logical date, its extra links and sensor."""
