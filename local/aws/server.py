"""A local AWS endpoint for running and testing the ECS batch jobs without an AWS account.

``python -m local.aws [--host 127.0.0.1] [--port 4566] [--default-duration 3]`` serves moto (every
service, over HTTP like ``moto_server``) with ECS tasks that behave like batch jobs (see
``local.aws.ecs_sim``) and a control API under ``/_local`` for scenarios, faults and call records (see
``local.aws.app``). Point boto3 at it with ``endpoint_url=http://HOST:PORT`` and any credentials.

In-process, ``with LocalAws(port=0) as aws:`` serves from a background thread at ``aws.url``; moto's state is
per process, so run one per process.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import threading
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, make_server

from local.aws import ecs_sim, query_definitions, sqs_release, task_events
from local.aws.app import LocalAwsApp
from local.aws.ids import enable_custom_ids
from local.aws.moto_surface import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from local.settings import LOCAL_AWS_PORT

DEFAULT_DURATION = float(os.environ.get("LOCAL_AWS_DEFAULT_DURATION", "3"))


class LocalAws:
    """moto plus the ECS simulator, served by a threaded werkzeug server."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = LOCAL_AWS_PORT, default_duration: float = DEFAULT_DURATION
    ) -> None:
        self.simulator = ecs_sim.Simulator(default_duration)
        self.app = LocalAwsApp(DomainDispatcherApplication(create_backend_app), self.simulator)
        self._host, self._port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> LocalAws:
        ecs_sim.install(self.simulator)
        query_definitions.install()
        task_events.install()
        sqs_release.install()
        _enable_custom_ids()
        self._server = make_server(
            self._host, self._port, self.app, threaded=True, request_handler=MotoRequestHandler
        )
        self.simulator.start()
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self.simulator.close()
        self._server = self._thread = None

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@functools.cache
def _enable_custom_ids() -> None:
    """Once per process: let seeded subnets and security groups carry the ids the catalog names."""
    enable_custom_ids()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=LOCAL_AWS_PORT, help="default: $LOCAL_AWS_PORT or 4566")
    parser.add_argument(
        "--default-duration",
        type=float,
        default=DEFAULT_DURATION,
        help="seconds a task runs unless its scenario says otherwise ($LOCAL_AWS_DEFAULT_DURATION or 3)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with LocalAws(args.host, args.port, args.default_duration) as aws:
        print(f"local AWS listening on {aws.url}", flush=True)
        stopping.wait()
