"""The local stack's SQLite metadata DB under contention: a component that finds the write lock taken waits
for it, where SQLite's default 5 s busy timeout made a CLI backfill fail with "database is locked"."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import pytest

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


def test_the_metadata_db_is_in_wal_mode(tier: Tier):
    with closing(sqlite3.connect(sqlite_file(tier.stack.home))) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_writer_waits_for_a_write_lock_held_longer_than_sqlites_default(tier: Tier):
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER], env=tier.stack.env, cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    # The test waits for the lock as the stack's components do: the scheduler may hold it when this starts.
    path = sqlite_file(tier.stack.home)
    with closing(sqlite3.connect(path, isolation_level=None, **SQLITE_CONNECT_ARGS)) as db:
        db.execute("BEGIN IMMEDIATE")  # the write lock, as a busy scheduler holds it
        assert writer.stdout.readline() == "writing\n"
        time.sleep(HELD)  # holding the lock is the point here, not waiting for a state
        assert writer.poll() is None, "the writer gave up while the lock was held"
        db.execute("ROLLBACK")
    assert writer.wait(timeout=60) == 0
    assert tier.api.call("GET", "/api/v2/pools/tier_lock_probe")["description"] == "waited for the lock"
