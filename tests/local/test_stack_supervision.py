"""``local.stack.Stack.supervise``: an Airflow component that exits is started again, as docker compose's
``restart: always`` and MWAA restart theirs; a crash loop, or a stand-in dying, stops the stack with an error
that names the process and its log. Real processes, no Airflow."""

from __future__ import annotations

import sys

import pytest

from local.settings import Component, Ports
from local.stack import CRASH_LOOP_RESTARTS, Stack

pytestmark = pytest.mark.integration
EXITS = [sys.executable, "-c", "import sys; sys.exit(3)"]


@pytest.fixture
def stack(tmp_path):
    stack = Stack(tmp_path / "home", Ports(), tmp_path / "logs")
    stack.components = {"scheduler": Component("scheduler", ["scheduler"], {})}
    yield stack
    stack.down(grace=2)


def test_a_component_that_exits_is_started_again_until_it_loops(stack: Stack):
    stack.start("scheduler", EXITS)
    for restarts in range(1, CRASH_LOOP_RESTARTS + 1):
        stack.processes["scheduler"].wait()
        stack.supervise()
        assert len(stack.restarts["scheduler"]) == restarts
    log = (stack.log_dir / "scheduler.log").read_text()
    assert log.count("--- local.stack started") == CRASH_LOOP_RESTARTS + 1, "each start logged"
    stack.processes["scheduler"].wait()
    with pytest.raises(
        RuntimeError, match=r"scheduler exited with 3; see .*scheduler\.log \(5 restarts in 60 s\)"
    ):
        stack.supervise()


def test_a_running_component_is_left_alone_and_a_stand_in_that_exits_is_an_error(stack: Stack):
    stack.start("scheduler", [sys.executable, "-c", "import time; time.sleep(60)"])
    stack.start("local-aws", EXITS).wait()
    with pytest.raises(RuntimeError, match=r"local-aws exited with 3; see .*local-aws\.log$"):
        stack.supervise()
    assert stack.restarts == {} and stack.processes["scheduler"].poll() is None
