"""docker-compose.yaml run for real on the test's engine: the repository's file as it is, plus an override
that changes images and networking only (never a service's command, mounts or environment).

The override gives every service host networking and names the other services' hosts as 127.0.0.1, since
compose's own network would put the containers on a bridge's addresses; it builds the project's Dockerfile on
the stand-in of apache/airflow (its ``AIRFLOW_IMAGE`` argument) and runs the postgres service on the stand-in
of postgres. With host networking the containers share this machine's ports, so each of the file's port
variables is given a free one, and nothing is published: docker-compose 1.29 refuses published ports on the
host network, and an override cannot remove a key, so the project runs compose's own resolution of the two
files (``docker-compose config``) without its ``ports``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from local import compose
from local.settings import REPO
from tests.stack.compose.engine import ComposeTestError, Engine
from tests.stack.compose.images import StandIns
from tests.support import free_port


def free_ports() -> dict[str, int]:
    """A free port for each of the file's port variables."""
    return {name: free_port() for name in compose.port_variables()}


def check_free(ports: dict[str, int]) -> None:
    """Every port the stack will listen on is free, or an error naming the port and its variable. A port is
    free when nothing listens on it (SO_REUSEADDR: the closed connections of a stopped server do not count,
    as they do not for the servers, which set it too)."""
    for name, port in ports.items():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
            except OSError as error:
                raise ComposeTestError(
                    f"port {port} ({name}) is already in use on this machine ({error.strerror}): "
                    f"set {name} to a free port"
                ) from None


def override(images: StandIns) -> dict[str, Any]:
    services = compose.compose()["services"]
    hosts = [f"{service}:127.0.0.1" for service in services]
    result: dict[str, Any] = {}
    for name, service in services.items():
        changed: dict[str, Any] = {"network_mode": "host", "extra_hosts": hosts}
        if "build" in service:
            args = {"AIRFLOW_IMAGE": images.airflow}
            changed["build"] = {"context": str(REPO), "network": "host", "args": args}
        if name == compose.POSTGRES_SERVICE:
            changed["image"] = images.postgres
        result[name] = changed
    return {"services": result}


class Project:
    """One compose project (``docker-compose -p``) of docker-compose.yaml and the override."""

    def __init__(
        self, engine: Engine, program: str, images: StandIns, work: Path, ports: dict[str, int], number: int
    ) -> None:
        self.engine, self.program, self.ports = engine, program, ports
        self.name = f"ecsjobs{os.getpid()}n{number}"
        self.env = {**engine.env, **{name: str(port) for name, port in ports.items()}}
        self.env["COMPOSE_PROJECT_NAME"] = self.name
        override_file = work / "docker-compose.override.yaml"
        override_file.write_text(yaml.safe_dump(override(images), sort_keys=False))
        self.files = [compose.COMPOSE_FILE, override_file]
        self.resolved = yaml.safe_load(self.run("config").stdout)
        for service in self.resolved["services"].values():
            service.pop("ports", None)
        self.files = [work / "docker-compose.resolved.yaml"]
        self.files[0].write_text(yaml.safe_dump(self.resolved, sort_keys=False))

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        files = [f"--file={file}" for file in self.files]
        command = [self.program, *files, f"--project-directory={REPO}", *args]
        try:
            result = subprocess.run(
                command, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            what = f"`docker-compose {' '.join(args)}`"
            raise ComposeTestError(f"{what} did not finish within {timeout:.0f} s") from None
        if check and result.returncode != 0:
            output = (result.stdout + result.stderr)[-4000:]
            what = f"`docker-compose {' '.join(args)}`"
            raise ComposeTestError(f"{what} failed ({result.returncode}):\n{output}")
        return result

    def build(self) -> None:
        try:
            self.run("build", timeout=1200)
        except ComposeTestError as error:
            raise ComposeTestError(f"the image build failed: {error}") from None

    def up(self, timeout: float = 900) -> None:
        """``up -d``: compose starts each service once what it depends on is healthy (or has completed)."""
        try:
            self.run("up", "--detach", "--no-build", timeout=timeout)
        except ComposeTestError as error:
            raise ComposeTestError(f"{error}\n{self.diagnosis()}") from None

    def containers(self) -> dict[str, dict[str, Any]]:
        """Service -> its container's state, from the engine."""
        ids = self.engine.docker(
            "ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={self.name}"
        ).stdout.split()
        if not ids:
            return {}
        inspected = json.loads(self.engine.docker("inspect", *ids).stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in inspected}

    def volumes(self) -> list[str]:
        return self.engine.docker(
            "volume", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={self.name}"
        ).stdout.split()

    def wait_healthy(self, timeout: float) -> dict[str, dict[str, Any]]:
        """Every service with a health check healthy (the others running, the init one exited 0)."""
        deadline = time.monotonic() + timeout
        while True:
            containers = self.containers()
            pending = {name: _condition(c) for name, c in containers.items() if _condition(c) != "ready"}
            if containers and not pending:
                return containers
            if time.monotonic() > deadline:
                raise ComposeTestError(f"not ready after {timeout:.0f} s: {pending}\n{self.diagnosis()}")
            time.sleep(2)

    def logs(self, service: str, lines: int = 40) -> str:
        return self.run("logs", "--no-color", "--tail", str(lines), service, check=False).stdout

    def diagnosis(self) -> str:
        """Each service's state and, for the ones not ready, their last log lines."""
        parts = []
        for name, container in sorted(self.containers().items()):
            state = _condition(container)
            parts.append(f"--- {name}: {state}")
            if state != "ready":
                parts.append(self.logs(name, 25))
        return "\n".join(parts)

    def down(self) -> subprocess.CompletedProcess:
        return self.run("down", "--volumes", "--remove-orphans", "--timeout", "30", timeout=300)


def _condition(container: dict[str, Any]) -> str:
    state = container["State"]
    if container["Config"]["Labels"]["com.docker.compose.service"] == compose.INIT_SERVICE:
        return "ready" if state["Status"] == "exited" and state["ExitCode"] == 0 else state["Status"]
    if state["Status"] != "running":
        return f"{state['Status']} (exit {state['ExitCode']})"
    health = state.get("Health", {}).get("Status")
    return "ready" if health in (None, "healthy") else health
