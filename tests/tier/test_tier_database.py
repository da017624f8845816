"""The local stack's SQLite metadata DB under contention: a component that finds the write lock taken waits
for it, where SQLite's default 5 s busy timeout made a CLI backfill fail with "database is locked"; the
api-server alone keeps that 5 s, since its waits freeze every request (see ``local.settings``)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager

import pytest

from local.api import ApiError
from local.settings import REPO, SQLITE_CONNECT_ARGS, sqlite_file
from tests.tier.harness import Tier

pytestmark = pytest.mark.tier

# Writes a pool through Airflow's own engine, as any component does; says when it is about to write.
WRITER = """
from airflow.models.pool import Pool
from airflow.utils.session import create_session
with create_session() as session:
    print("writing", flush=True)
    Pool.create_or_update_pool("tier_lock_probe", 1, "waited for the lock", False, session=session)
"""
HELD = 8  # seconds; longer than SQLite's default busy timeout (5 s)
PROBE = {"key": "tier_lock_probe", "value": "written while the lock was held"}


@contextmanager
def write_lock(tier: Tier) -> Iterator[None]:
    """Holds the DB's write lock, as a busy scheduler holds it; waits for it as the components do (the
    scheduler may hold it when this starts)."""
    path = sqlite_file(tier.stack.home)
    with closing(sqlite3.connect(path, isolation_level=None, **SQLITE_CONNECT_ARGS)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")


def test_the_metadata_db_is_in_wal_mode(tier: Tier):
    with closing(sqlite3.connect(sqlite_file(tier.stack.home))) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_writer_waits_for_a_write_lock_held_longer_than_sqlites_default(tier: Tier):
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER], env=tier.stack.env, cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    with write_lock(tier):
        assert writer.stdout.readline() == "writing\n"
        time.sleep(HELD)  # holding the lock is the point here, not waiting for a state
        assert writer.poll() is None, "the writer gave up while the lock was held"
    assert writer.wait(timeout=60) == 0
    assert tier.api.call("GET", "/api/v2/pools/tier_lock_probe")["description"] == "waited for the lock"


def test_the_api_answers_again_soon_when_its_write_cannot_get_the_lock(tier: Tier):
    """A write through the API (its audit log row is committed on the api-server's event loop) while the lock
    is held: with the components' one-minute wait the whole API froze for that minute (a trigger click hung
    the UI in CI). Within the hold, the write gives up with "database is locked" and a read sent after it
    is answered."""
    results: dict[str, object] = {}

    def call(name: str, method: str, path: str, body: dict | None = None) -> None:
        try:
            results[name] = tier.api.call(method, path, body)
        except ApiError as error:
            results[name] = error

    api_log = tier.output / "stack-logs" / "api-server.log"
    logged_before = api_log.stat().st_size
    with write_lock(tier):
        write = threading.Thread(target=call, args=("write", "POST", "/api/v2/variables", PROBE))
        write.start()
        time.sleep(1)  # the write is on its way to the lock; the read goes in behind it
        call("read", "GET", "/api/v2/version")
        write.join(timeout=HELD * 2)  # the lock is still held: only giving up ends the write
        held = write.is_alive()
    assert not held, "the API write was still waiting for the lock after 16 s"
    assert results["read"]["version"]
    assert isinstance(results["write"], ApiError) and results["write"].status == 500, results["write"]
    # The statement that gave up is the audit log row, the one written on the api-server's event loop.
    assert "INSERT INTO log (" in api_log.read_bytes()[logged_before:].decode(errors="replace")
