"""Connection lookups in the triggerer that a cancelled trigger or poller must still finish.

A hook's ``get_async_conn`` (and the Slack hook's ``get_async_client``) reads the Airflow connection through
the triggerer's channel to its supervisor: one request, one response. When the awaiting task is cancelled in
between, asgiref cancels the exchange after the request went out, and Airflow 3.2's trigger runner reads the
orphaned response as the answer to its next request and dies ("Response read out of order"). Pollers and
listeners are cancelled whenever their last wait ends, so their lookups are shielded here: a cancel waits for
the lookup to finish, then takes effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def finished(lookup: Awaitable[T]) -> T:
    """The lookup's result; cancelling the caller meanwhile lets the lookup end first, then cancels."""
    task = asyncio.ensure_future(lookup)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise
