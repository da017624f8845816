"""The DAG file as Airflow imports it, in a fresh interpreter: what building the DAGs leaves imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from local.settings import REPO


@pytest.mark.integration  # a subprocess
def test_building_the_dags_leaves_the_slack_client_unimported():
    """Every parse builds the alert callbacks; the Slack provider and slack_sdk's aiohttp client are imported
    only when an alert is sent (``alerts._hook``), which keeps about 90 ms off each parse."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ecsjobs.catalog.loading import load_catalog\n"
        "from ecsjobs.build.factory import build_dags\n"
        f"assert build_dags(load_catalog(Path({str(REPO / 'config')!r}), 'local'))\n"
        "slack = ('slack_sdk', 'airflow.providers.slack.hooks')\n"
        "print(sorted(m for m in sys.modules if m.startswith(slack)))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
