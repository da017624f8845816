"""``local/postgres.py``: where the local stack's PostgreSQL keeps its data and runs, for root and for others.
The server itself runs in ``tests/stack/test_make_run.py`` and the tier."""

from __future__ import annotations

import os
import pwd
import subprocess

import pytest

from local import postgres

pytestmark = pytest.mark.integration  # subprocesses or servers: not the unit lane


def test_a_user_keeps_the_data_in_the_stacks_home_from_one_run_to_the_next(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # mocked: CI runs as root; this is a laptop user's path
    cluster = postgres.Cluster(tmp_path, 5433)
    assert (cluster.data, cluster.popen, cluster.temporary) == (tmp_path / "postgres", {}, None)
    assert cluster.new
    cluster.data.mkdir()
    (cluster.data / "PG_VERSION").write_text("16\n")
    assert not postgres.Cluster(tmp_path, 5433).new
    assert cluster.bin == postgres.installed() / "pginstall" / "bin"


@pytest.mark.skipif(os.geteuid() != 0, reason="the root path: PostgreSQL refuses to run as root")
def test_root_runs_it_as_nobody_from_a_folder_of_its_own_that_goes_afterwards(tmp_path):
    tmp_path.chmod(0o700)  # a home others may not enter, as pytest's and root's own are
    cluster = postgres.Cluster(tmp_path, 5433)
    try:
        nobody = pwd.getpwnam(postgres.SERVER_USER)
        assert cluster.popen == {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        assert tmp_path not in cluster.data.parents
        assert cluster.data.stat().st_uid == nobody.pw_uid
        result = subprocess.run(cluster.initdb_command(), capture_output=True, text=True, **cluster.popen)
        assert result.returncode == 0, result.stderr
        assert not cluster.new
    finally:
        cluster.remove_temporary()
    assert not cluster.temporary.exists()
