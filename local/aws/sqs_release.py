"""A message made visible again wakes the long polls waiting on its queue, as in SQS.

SQS: "a message that is made visible again with a visibility timeout of 0 is immediately available to
receive" (ChangeMessageVisibility, Amazon SQS API Reference), and a long poll "returns as soon as a message is
available" (Amazon SQS long polling). moto 5.2.5's long poll wakes only when a message is *sent*
(``Queue.add_message`` notifies ``_messages_lock``) and otherwise looks again once a second, so a released
message would wait up to a second for a receive already in flight. Several triggerers reading one queue
release each other's ECS task events (``ecsjobs.waiting.state_events``); this makes the local AWS as quick as
SQS.
"""

from __future__ import annotations

from typing import Any

from local.aws.moto_surface import SQSBackend

_original = SQSBackend.change_message_visibility


def change_message_visibility(
    self: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
) -> None:
    _original(self, queue_name, receipt_handle, visibility_timeout)
    if int(visibility_timeout) == 0:
        queue: Any = self.get_queue(queue_name)
        with queue._messages_lock:
            queue._messages_lock.notify_all()


def install() -> None:
    SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign]
