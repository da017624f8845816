"""The WSGI app of the local AWS: moto's server app behind a middleware that adds what moto lacks.

The middleware records every AWS call, injects faults, makes RunTask idempotent by ``clientToken``, writes
due simulated log lines before CloudWatch Logs is read, and serves the control API under ``/_local``:

* ``POST /_local/scenarios`` ``{"match": {...}, "scenario": {...}, "times": N}`` -> ``{"id": ...}``;
  ``GET`` lists the rules, ``DELETE`` clears them, ``DELETE /_local/scenarios/<id>`` drops one;
* ``POST /_local/faults`` ``{"action", "kind", "service", "reason", "rate", "times", "match"}``, same verbs;
* ``POST /_local/event-faults`` ``{"kind", "status", "seconds", "rate", "times", "match"}`` (drop, duplicate,
  delay or reorder ECS task state change events, see ``local.aws.task_events``), same verbs;
* ``GET /_local/calls[?action=&service=&since=]``, ``GET /_local/stats``, ``GET /_local/tasks``,
  ``GET /_local/events`` (the task state change events sent to EventBridge, in order);
* ``POST /_local/reset``: forget rules, faults, calls, events and client tokens (moto's state stays).
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import botocore.exceptions
import botocore.session
from werkzeug.wrappers import Request, Response

from local.aws.ecs_sim import Simulator, effective_launch, frozen_clock
from local.aws.faults import Faults, fault_reply
from local.aws.moto_surface import ecs_backends, get_account_id_from, get_partition
from local.aws.rules import Facts

ECS_TARGET = "AmazonEC2ContainerServiceV20141113"
TARGET_SERVICES = {ECS_TARGET: "ecs", "Logs_20140328": "logs", "GraniteServiceVersion20100801": "monitoring"}
CREDENTIAL = re.compile(r"Credential=([^/]*)/[^/]*/([^/]*)/([^/]*)/")
RPC_V2_PATH = re.compile(r"^/service/[^/]+/operation/([^/]+)$")  # smithy-rpc-v2-cbor, e.g. CloudWatch
MAX_CALLS = 200_000

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def rest_operation(service: str, method: str, path: str) -> str:
    """The operation a REST call (Scheduler, Lambda: no action in the request) is, from botocore's model of
    the service's URIs; the HTTP method if none matches."""
    for route_method, pattern, operation in _rest_routes(service):
        if route_method == method and pattern.match(path):
            return operation
    return method


@functools.cache
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], str]]:
    try:
        model = botocore.session.get_session().get_service_model(service)
    except botocore.exceptions.UnknownServiceError:
        return []
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = http["requestUri"].split("?", 1)[0]
        parts = re.split(r"(\{[^}]+\})", uri)
        regex = "".join(
            (".+" if part.endswith("+}") else "[^/]+") if part.startswith("{") else re.escape(part)
            for part in parts
        )
        literal = sum(len(part) for part in parts if not part.startswith("{"))
        routes.append((literal, http["method"], re.compile(f"^{regex}/?$"), name))
    return [(method, pattern, name) for _, method, pattern, name in sorted(routes, key=lambda r: -r[0])]


@dataclass(frozen=True)
class AwsCall:
    """One AWS API call as far as the middleware needs to understand it."""

    service: str
    action: str
    region: str
    access_key: str
    json_protocol: bool
    params: dict[str, Any] = field(default_factory=dict)  # the JSON body of json-protocol calls

    @classmethod
    def parse(cls, environ: dict[str, Any], body: bytes) -> AwsCall:
        credential = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        access_key, region, service = credential.groups() if credential else ("", "us-east-1", "")
        target_prefix, _, target_action = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")
        rpc_v2 = RPC_V2_PATH.match(environ.get("PATH_INFO", ""))
        service = service or TARGET_SERVICES.get(target_prefix, "unknown")
        if target_action:
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                params = {}
            return cls(
                service, target_action, region, access_key, True, params if isinstance(params, dict) else {}
            )
        if rpc_v2:
            return cls(service, rpc_v2.group(1), region, access_key, True)
        form = parse_qs(environ.get("QUERY_STRING", ""))
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            form.update(parse_qs(body.decode("utf-8", "replace")))
        method = environ.get("REQUEST_METHOD", "")
        action = form.get("Action", [rest_operation(service, method, environ.get("PATH_INFO", ""))])[0]
        return cls(service, action, region, access_key, False)

    @property
    def account(self) -> str:
        """The account moto files this call under (see moto's BaseResponse.get_current_account)."""
        return os.environ.get("MOTO_ACCOUNT_ID") or get_account_id_from(self.access_key)

    @property
    def tasks(self) -> list[str]:
        """The tasks the call names (DescribeTasks' ``tasks``, StopTask's ``task``)."""
        tasks = self.params.get("tasks")
        if isinstance(tasks, list):
            return [str(t) for t in tasks]
        return [str(self.params["task"])] if self.params.get("task") else []


class CallLog:
    """The last ``MAX_CALLS`` AWS calls and a count per ``service.Action``, for tests and benchmarks."""

    def __init__(self) -> None:
        self._calls: deque[dict[str, Any]] = deque(maxlen=MAX_CALLS)
        self._stats: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, started: float, call: AwsCall, status: int) -> None:
        entry = {
            "t": started,
            "service": call.service,
            "action": call.action,
            "tasks": len(call.tasks),
            "task_arns": call.tasks,
            "status": status,
        }
        with self._lock:
            self._calls.append(entry)
            self._stats[f"{call.service}.{call.action}"] += 1

    def query(self, action: str | None, service: str | None, since: float) -> list[dict[str, Any]]:
        with self._lock:
            calls = list(self._calls)
        return [
            c
            for c in calls
            if c["t"] >= since and action in (None, c["action"]) and service in (None, c["service"])
        ]

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self._stats.clear()


@dataclass
class Reply:
    status: str  # e.g. "200 OK"
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def code(self) -> int:
        return int(self.status.split(" ", 1)[0])


class LocalAwsApp:
    """WSGI middleware around moto's ``DomainDispatcherApplication``."""

    def __init__(self, moto_app: WsgiApp, simulator: Simulator) -> None:
        self.moto_app = moto_app
        self.simulator = simulator
        self.faults = Faults()
        self.calls = CallLog()
        self._tokens: dict[tuple[str, str, str, str], list[str]] = {}
        self._token_locks: dict[tuple[str, str, str, str], threading.Lock] = {}
        self._token_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_local/"):
            return self._control(Request(environ))(environ, start_response)
        if path.startswith("/moto-api/"):
            reply = self._moto(environ)
            if path == "/moto-api/reset" and reply.code == 200:
                self.simulator.forget_tasks()
                self._forget_tokens()
        else:
            started = time.time()
            call = AwsCall.parse(environ, _read_body(environ))
            reply = self._answer(call, environ)
            self.calls.record(started, call, reply.code)
        start_response(reply.status, reply.headers)
        return [reply.body]

    def reset(self) -> None:
        self.simulator.scenarios.clear()
        self.simulator.events.reset()
        self.faults.rules.clear()
        self.calls.clear()
        self._forget_tokens()

    def _answer(self, call: AwsCall, environ: dict[str, Any]) -> Reply:
        if call.service == "logs":
            self.simulator.flush_logs()
        run_task = (call.service, call.action) == ("ecs", "RunTask")
        facts = _run_facts(call) if run_task else None
        fault = self.faults.take(call.service, call.action, facts)
        if fault:
            status, content_type, body = fault_reply(
                fault, call.service, call.json_protocol, facts, call.params
            )
            return Reply(f"{status} {HTTPStatus(status).phrase}", _headers(content_type, body), body)
        token = call.params.get("clientToken") if run_task else None
        if token:
            return self._run_task_once(call, token, environ)
        return self._moto(environ)

    def _run_task_once(self, call: AwsCall, token: str, environ: dict[str, Any]) -> Reply:
        """The first RunTask with a token starts tasks; a repeat answers with those tasks as they are now.

        boto3 fills in a token for every RunTask and keeps it across its retries, so a retried call whose
        first answer was lost does not start a second task, as on ECS.
        """
        cluster = call.params.get("cluster") or "default"
        key = (call.account, call.region, cluster.split("/")[-1], token)
        with self._token_lock:
            lock = self._token_locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._tokens:
                return self._moto(_describe_tasks_environ(environ, cluster, self._tokens[key]))
            reply = self._moto(environ)
            if reply.code == 200:
                arns = [task["taskArn"] for task in json.loads(reply.body).get("tasks", [])]
                self._tokens[key] = arns
                self.simulator.set_client_token(arns, token)
            return reply

    def _forget_tokens(self) -> None:
        with self._token_lock:
            self._tokens.clear()
            self._token_locks.clear()

    def _moto(self, environ: dict[str, Any]) -> Reply:
        """Let moto answer, buffered, so that the status can be recorded and a RunTask answer read."""
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started.update(status=status, headers=headers)
            return chunks.append

        with frozen_clock():
            result = self.moto_app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        return Reply(started["status"], started["headers"], b"".join(chunks))

    def _control(self, request: Request) -> Response:
        books = {
            "scenarios": self.simulator.scenarios,
            "faults": self.faults.rules,
            "event-faults": self.simulator.events.faults,
        }
        parts = request.path.removeprefix("/_local/").strip("/").split("/")
        try:
            match request.method, parts:
                case "GET", ["scenarios" | "faults" | "event-faults" as kind]:
                    return _json(books[kind].to_json())
                case "POST", ["scenarios"]:
                    return _json(self.simulator.add_scenario(request.get_json(force=True, silent=True)))
                case "POST", ["faults"]:
                    return _json(self.faults.add(request.get_json(force=True, silent=True)))
                case "POST", ["event-faults"]:
                    return _json(self.simulator.events.add_fault(request.get_json(force=True, silent=True)))
                case "DELETE", ["scenarios" | "faults" | "event-faults" as kind]:
                    books[kind].clear()
                    return _json({"ok": True})
                case "DELETE", ["scenarios" | "faults" | "event-faults" as kind, rule_id]:
                    removed = books[kind].remove(rule_id)
                    return _json({"ok": removed}, 200 if removed else 404)
                case "GET", ["calls"]:
                    args = request.args
                    since = float(args.get("since", 0))
                    return _json(self.calls.query(args.get("action"), args.get("service"), since))
                case "GET", ["stats"]:
                    return _json(self.calls.stats())
                case "GET", ["tasks"]:
                    return _json(self.simulator.tasks_json())
                case "GET", ["events"]:
                    return _json(self.simulator.events.sent_json())
                case "POST", ["reset"]:
                    self.reset()
                    return _json({"ok": True})
                case _:
                    return _json({"error": f"no such endpoint: {request.method} {request.path}"}, 404)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back, so that moto can read it again."""
    stream = environ["wsgi.input"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = stream.read(length) if length else stream.read() if environ.get("wsgi.input_terminated") else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _run_facts(call: AwsCall) -> Facts:
    """What a RunTask call can be matched on, with the cluster's default strategy applied as ECS does."""
    params = call.params
    name = (params.get("cluster") or "default").split("/")[-1]
    cluster = ecs_backends[call.account][call.region].clusters.get(name)
    arn = (
        cluster.arn
        if cluster
        else f"arn:{get_partition(call.region)}:ecs:{call.region}:{call.account}:cluster/{name}"
    )
    launch, provider = effective_launch(
        params.get("launchType"),
        params.get("capacityProviderStrategy"),
        cluster.default_capacity_provider_strategy if cluster else None,
    )
    family = str(params.get("taskDefinition", "")).split("/")[-1].split(":")[0]
    return Facts.of_run(
        name,
        arn,
        family,
        params.get("startedBy"),
        params.get("group"),
        provider or launch,
        params.get("overrides"),
    )


def _describe_tasks_environ(environ: dict[str, Any], cluster: str, task_arns: list[str]) -> dict[str, Any]:
    """The RunTask request turned into a DescribeTasks of the given tasks (same answer shape)."""
    body = json.dumps({"cluster": cluster, "tasks": task_arns, "include": ["TAGS"]}).encode()
    return {
        **environ,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_AMZ_TARGET": f"{ECS_TARGET}.DescribeTasks",
    }


def _headers(content_type: str, body: bytes) -> list[tuple[str, str]]:
    return [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", "local-fault"),
    ]


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, default=str), status, mimetype="application/json")
