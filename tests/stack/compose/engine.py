"""A private Docker engine for the compose test: Debian's dockerd as root, its data root in a cache folder
that survives the run (so built images are reused), its socket and state in a temporary folder, stopped by
PID.

It touches nothing of the machine's networking: no docker0 bridge, no iptables rules, no IP forwarding. The
containers run with host networking (the compose test's override), so that every connection stays on
127.0.0.1.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

# Debian's packages: the engine, docker-compose (1.29.2) and what the stand-in images are made with.
PACKAGES = {"dockerd": "docker.io", "docker": "docker.io", "docker-compose": "docker-compose"}
PACKAGES["debootstrap"] = "debootstrap"
START_TIMEOUT = 60


class ComposeTestError(Exception):
    """What stops the compose test before or while it runs the stack, said so that the cause is plain."""


def cache_dir() -> Path:
    """Where the engine keeps its images between runs (``ECSJOBS_DOCKER_CACHE`` moves it)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ecs-batch-jobs" / "docker"
    return Path(os.environ.get("ECSJOBS_DOCKER_CACHE", default))


def install_packages(programs: dict[str, str] = PACKAGES) -> dict[str, str]:
    """Program -> its path, installing the Debian packages of those missing (a fresh machine has none)."""
    missing = sorted({package for program, package in programs.items() if not shutil.which(program)})
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise ComposeTestError(
                f"no Docker engine here: {', '.join(missing)} missing, and installing them needs root "
                "and apt-get"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        ):
            result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
            if result.returncode != 0:
                raise ComposeTestError(f"`{' '.join(command)}` failed:\n{result.stderr[-3000:]}")
    found = {program: shutil.which(program) for program in programs}
    if not all(found.values()):
        absent = [program for program, path in found.items() if not path]
        raise ComposeTestError(f"installed {', '.join(missing)} but {', '.join(absent)} is still not on PATH")
    return {program: str(path) for program, path in found.items()}


class Engine:
    """A dockerd of the test's own; ``docker`` and ``compose`` run against it."""

    def __init__(self, dockerd: str, docker: str, data_root: Path) -> None:
        self.dockerd, self.docker_cli, self.data_root = dockerd, docker, data_root
        # A unix socket's path is at most 107 bytes: the socket and the daemon's state go in a short one.
        self.run_dir = Path(tempfile.mkdtemp(prefix="ecsjobs-dockerd-", dir="/tmp"))
        self.socket, self.pidfile = self.run_dir / "docker.sock", self.run_dir / "docker.pid"
        self.log = self.run_dir / "dockerd.log"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}
        self.process: subprocess.Popen | None = None
        self._lock: IO[str] | None = None

    def start(self, timeout: float = START_TIMEOUT) -> Engine:
        if not Path(self.dockerd).is_file():
            raise ComposeTestError(
                f"no Docker engine: {self.dockerd} does not exist (Debian's docker.io has it)"
            )
        self.data_root.mkdir(parents=True, exist_ok=True)
        self._lock = (self.data_root.parent / f"{self.data_root.name}.lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ComposeTestError(
                f"another Docker engine of this test uses {self.data_root}: wait for it, or set "
                "ECSJOBS_DOCKER_CACHE to another folder"
            ) from None
        command = [
            self.dockerd,
            f"--host=unix://{self.socket}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.run_dir / 'exec'}",
            f"--pidfile={self.pidfile}",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
        ]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while self.docker("version", check=False).returncode != 0:
            if self.process.poll() is not None:
                raise ComposeTestError(f"dockerd exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ComposeTestError(f"dockerd did not answer within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.5)
        return self

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120, **kwargs
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [self.docker_cli, *args], env=self.env, capture_output=True, text=True, timeout=timeout, **kwargs
        )
        if check and result.returncode != 0:
            raise ComposeTestError(f"`docker {' '.join(args)}` failed:\n{result.stderr[-3000:]}")
        return result

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM to the daemon by its PID (it stops its containers first), SIGKILL after ``timeout``."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        shutil.rmtree(self.run_dir, ignore_errors=True)
