"""What a try defers to: the wait for its ECS task, with the step's deadline, the reason a kill stops it
with, the container log to forward and the "running late" alert."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from ecsjobs.decisions.outcome import kill_stop_reason, timeout_stop_reason
from ecsjobs.ecs import EcsTask
from ecsjobs.execution import provider, results
from ecsjobs.waiting.triggers import EcsTaskWaitTrigger

# The defer timeout is a safety net behind the trigger's own deadline, for a triggerer that never answers.
DEFER_GRACE = timedelta(minutes=10)
KILL_REASON = kill_stop_reason("the Airflow task was stopped (marked failed or cleared)")


def wait_for(
    step: Any, context: Any, launch: str, task: EcsTask | None
) -> tuple[EcsTaskWaitTrigger, timedelta | None]:
    """The trigger that waits for ``step.arn``, and the defer timeout. The deadline counts from the try's
    start; a ``task`` found running (an earlier start of this try, or an earlier try's) is late by its own
    start."""
    ti = context["ti"]
    started = ti.start_date.timestamp() if getattr(ti, "start_date", None) else time.time()
    timeout = step.step_timeout
    trigger = EcsTaskWaitTrigger.waiting_for(
        step,
        step.arn,
        deadline=started + timeout.total_seconds() if timeout else None,
        kill_reason=KILL_REASON,
        log_group=step.awslogs_group,
        log_stream=provider.log_stream(step),
        botocore_config=step.botocore_config,
        late_alert=results.late_alert(step, context, launch, min(started, results.created(task) or started)),
        not_before=time.time() + step.resume_delay if step.resume_delay else None,
        **({"stop_reason": timeout_stop_reason(timeout)} if timeout else {}),
    )
    return trigger, timeout + DEFER_GRACE if timeout else None
