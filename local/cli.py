"""``make airflow ARGS="..."``: the ``airflow`` CLI against ``make run``'s stack.

The CLI must see what the stack's components see (its metadata DB, AIRFLOW_HOME, catalog and connections),
e.g. for ``airflow backfill create``; this runs it with their environment. ``--home`` and ``--topology`` as
for ``local.stack``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from local.settings import REPO, TOPOLOGIES, Ports
from local.stack import Stack, airflow_program


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=REPO / ".local" / "airflow", help="AIRFLOW_HOME")
    parser.add_argument("--topology", choices=TOPOLOGIES, default="local", help="the stack's (make run's)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the airflow CLI's arguments")
    args = parser.parse_args()
    home = args.home.resolve()
    env = Stack(home, Ports(), home / "logs" / "stack", topology=args.topology).env
    os.chdir(REPO)
    os.execve(airflow_program(), [airflow_program(), *args.args], env)


if __name__ == "__main__":
    main()
