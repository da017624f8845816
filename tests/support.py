"""Helpers shared by tests: free ports and the stand-in servers run as subprocesses."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

from local.settings import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """A stand-in started as a subprocess on a free port, stopped by PID."""

    def __init__(self, module: str, ready_path: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not self._answers(ready_path):
            if self.process.poll() is not None:
                raise RuntimeError(f"{module} exited: {self.process.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{module} did not answer on {self.url}")
            time.sleep(0.1)

    def _answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.url + path, timeout=1):
                return True
        except OSError:
            return False

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.load(response)

    def post(self, path: str, body: dict | None = None, method: str = "POST"):
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body or {}).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
