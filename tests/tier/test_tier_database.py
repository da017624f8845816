"""The local stack's metadata DB: a PostgreSQL server of its own. On SQLite one open write transaction made
every other writer wait for the file's one lock, and under CI load Airflow answered "database is locked" (a
503 for a backfill, a 500 for a click in the UI); here the components' writes go through side by side."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager

import psycopg2
import pytest

from local import postgres
from local.settings import REPO
from tests.tier.harness import Tier

pytestmark = pytest.mark.tier

# Writes a pool through Airflow's own engine, as any component does.
WRITER = """
from airflow.models.pool import Pool
from airflow.utils.session import create_session
with create_session() as session:
    Pool.create_or_update_pool("tier_db_probe", 1, "a process's write", False, session=session)
"""


def connect(tier: Tier):
    return psycopg2.connect(postgres.dsn(tier.stack.ports.postgres))


@contextmanager
def open_write_transaction(tier: Tier) -> Iterator[None]:
    """An audit log row written and not committed, as a component's transaction holds its writes while it
    works; rolled back at the end."""
    with closing(connect(tier)) as db, db.cursor() as cursor:
        cursor.execute("INSERT INTO log (dttm, event, owner) VALUES (now(), 'tier_db_probe', 'test')")
        try:
            yield
        finally:
            db.rollback()


def test_airflow_keeps_its_metadata_in_the_stacks_postgres(tier: Tier):
    with closing(connect(tier)) as db, db.cursor() as cursor:
        cursor.execute("SELECT version()")
        (version,) = cursor.fetchone()
        cursor.execute("SELECT dag_id FROM dag")
        stored = {dag_id for (dag_id,) in cursor}
    assert version.startswith("PostgreSQL 16")
    listed = {d["dag_id"] for d in tier.api.call("GET", "/api/v2/dags?limit=100")["dags"]}
    assert "tier_daily" in listed and listed <= stored


def test_writes_go_through_while_another_transaction_holds_its_writes(tier: Tier):
    """The API (a variable, whose audit log row is written too) and a process through Airflow's engine (a
    pool) write while the test's transaction stays open. The transaction ends only after them, so writes
    that waited for it would wait out their timeouts (the API call's 30 s, the process's 60 s) and fail; on
    SQLite they did."""
    variable = {"key": "tier_db_probe", "value": "written beside an open write transaction"}
    with open_write_transaction(tier):
        tier.api.call("POST", "/api/v2/variables", variable)
        writer = subprocess.run(
            [sys.executable, "-c", WRITER],
            env=tier.stack.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert writer.returncode == 0, writer.stderr
    assert tier.api.call("GET", "/api/v2/variables/tier_db_probe")["value"] == variable["value"]
    assert tier.api.call("GET", "/api/v2/pools/tier_db_probe")["description"] == "a process's write"
    with closing(connect(tier)) as db, db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM log WHERE event = 'tier_db_probe'")
        assert cursor.fetchone() == (0,)  # the held write was never committed
