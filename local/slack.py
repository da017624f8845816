"""A local stand-in for the Slack Web API, so alerting can be run and tested without a real workspace.

``python -m local.slack [--host 127.0.0.1] [--port 4567]`` serves it; point a Slack client at
``http://HOST:PORT/api/``. It answers ``auth.test`` and ``chat.postMessage`` as Slack does, and adds:

* ``GET /messages``: the messages posted so far, oldest first;
* ``GET /requests``: every API request, failed and faulted ones included (token values redacted);
* ``POST /_local/reset`` or ``DELETE /messages``: forget messages, requests and faults;
* ``POST /_local/faults``: make API calls misbehave, e.g. ``{"method": "chat.postMessage", "status": 429,
  "retry_after": 1, "times": 2}``, ``{"error": "channel_not_found"}`` or ``{"delay": 2.5}``;
  ``GET`` lists the active faults and ``DELETE`` clears them.

In-process, ``with LocalSlack(port=0) as slack:`` serves from a background thread at ``slack.url``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DEFAULT_PORT = 4567
TOKEN_PREFIXES = ("xoxb-", "xoxp-")
REDACTED = "(redacted)"
IDENTITY = {
    "url": "https://local.slack.com/",
    "team": "local",
    "user": "airflow",
    "team_id": "T000LOCAL",
    "user_id": "U000LOCAL",
    "bot_id": "B000LOCAL",
}

JsonDict = dict[str, Any]


class SlackError(Exception):
    """An ``ok: false`` answer; Slack reports API errors with HTTP 200 and an error code."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass
class Reply:
    """What an API call answers: status, JSON body and extra headers."""

    body: JsonDict
    status: int = HTTPStatus.OK
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """A scripted misbehaviour of the API, so retries, error handling and timeouts can be tested."""

    method: str = "*"
    status: int = HTTPStatus.OK
    error: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    times: int | None = None  # None: forever

    def __post_init__(self) -> None:
        HTTPStatus(self.status)  # raises ValueError for a status that does not exist
        if self.delay < 0 or (self.times is not None and self.times < 1):
            raise ValueError(f"invalid fault: {asdict(self)}")

    def matches(self, method: str) -> bool:
        return self.method in ("*", method)

    def reply(self) -> Reply | None:
        """The answer this fault forces, or None when it only delays the real one."""
        if self.status == HTTPStatus.OK and self.error is None:
            return None
        rate_limited = self.status == HTTPStatus.TOO_MANY_REQUESTS
        error = self.error or ("ratelimited" if rate_limited else "fatal_error")
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return Reply({"ok": False, "error": error}, self.status, headers)


class SlackState:
    """What the stand-in remembers; handler threads share it, so every access holds the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[JsonDict] = []
        self._messages: list[JsonDict] = []
        self._faults: list[Fault] = []
        self._last_ts_us = 0

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._messages.clear()
            self._faults.clear()

    def requests(self) -> list[JsonDict]:
        with self._lock:
            return list(self._requests)

    def messages(self) -> list[JsonDict]:
        with self._lock:
            return list(self._messages)

    def faults(self) -> list[JsonDict]:
        with self._lock:
            return [asdict(fault) for fault in self._faults]

    def add_faults(self, faults: list[Fault]) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, method: str) -> Fault | None:
        """The first fault for ``method``, counting one of its ``times`` as spent."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def record_request(self, request: JsonDict) -> None:
        with self._lock:
            self._requests.append(request)

    def add_message(self, message: JsonDict) -> str:
        """Store ``message`` under a fresh ts: unique and increasing, as Slack's ts identify messages."""
        with self._lock:
            self._last_ts_us = max(time.time_ns() // 1000, self._last_ts_us + 1)
            ts = f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"
            self._messages.append({**message, "ts": ts, "time": _now()})
        return ts


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _channel_id(channel: str) -> str:
    """Keep channel ids; give channel names a stable made-up id, as Slack answers with ids."""
    if re.fullmatch(r"[CGD][A-Z0-9]{8,}", channel):
        return channel
    return "C" + hashlib.sha1(channel.lstrip("#").lower().encode()).hexdigest()[:10].upper()


def _json_list(params: JsonDict, name: str) -> list[Any] | None:
    """``blocks`` / ``attachments``: a list in JSON bodies, a JSON string in form posts."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            value = json.loads(value) if value else None
        except ValueError:
            raise SlackError(f"invalid_{name}") from None
    if value is not None and not isinstance(value, list):
        raise SlackError(f"invalid_{name}")
    return value or None


def _auth_test(state: SlackState, params: JsonDict) -> JsonDict:
    return dict(IDENTITY)


def _post_message(state: SlackState, params: JsonDict) -> JsonDict:
    channel = str(params.get("channel") or "")
    if not channel:
        raise SlackError("channel_not_found")
    text = str(params.get("text") or "")
    blocks = _json_list(params, "blocks")
    attachments = _json_list(params, "attachments")
    if not (text or blocks or attachments):
        raise SlackError("no_text")
    channel_id = _channel_id(channel)
    thread_ts = params.get("thread_ts")
    posted = {"text": text, "blocks": blocks, "attachments": attachments, "thread_ts": thread_ts}
    ts = state.add_message({"channel": channel, "channel_id": channel_id, **posted})
    message = {"type": "message", "user": IDENTITY["user_id"], "bot_id": IDENTITY["bot_id"], "ts": ts}
    message.update((key, value) for key, value in posted.items() if value is not None)
    return {"channel": channel_id, "ts": ts, "message": message}


API_METHODS: dict[str, Callable[[SlackState, JsonDict], JsonDict]] = {
    "auth.test": _auth_test,
    "chat.postMessage": _post_message,
}


class SlackHandler(BaseHTTPRequestHandler):
    """Routes ``/api/<method>`` like Slack, plus the local inspection and fault endpoints."""

    server: LocalSlack

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    def _route(self) -> None:
        state = self.server.state
        path = urlsplit(self.path).path
        match self.command, path:
            case ("GET" | "POST", _) if path.startswith("/api/"):
                self._api(path.removeprefix("/api/"))
            case "GET", "/messages":
                self._send(HTTPStatus.OK, state.messages())
            case "GET", "/requests":
                self._send(HTTPStatus.OK, state.requests())
            case ("POST", "/_local/reset") | ("DELETE", "/messages"):
                state.reset()
                self._send(HTTPStatus.OK, {"ok": True})
            case "GET", "/_local/faults":
                self._send(HTTPStatus.OK, state.faults())
            case "POST", "/_local/faults":
                self._add_faults()
            case "DELETE", "/_local/faults":
                state.clear_faults()
                self._send(HTTPStatus.OK, {"ok": True})
            case _:
                self._send(HTTPStatus.NOT_FOUND, {"ok": False, "error": "not_found"})

    def _add_faults(self) -> None:
        """Take one fault object or a list of them."""
        try:
            payload = json.loads(self._read_body() or b"{}")
            faults = [Fault(**item) for item in (payload if isinstance(payload, list) else [payload])]
        except (TypeError, ValueError) as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"ok": False, "error": f"invalid_fault: {exc}"})
            return
        self.server.state.add_faults(faults)
        self._send(HTTPStatus.OK, {"ok": True, "faults": self.server.state.faults()})

    def _api(self, method: str) -> None:
        raw = self._read_body()
        fault = self.server.state.take_fault(method)
        if fault:
            time.sleep(fault.delay)
        params: JsonDict = {}
        try:
            params = self._params(raw)
            reply = (fault.reply() if fault else None) or self._call(method, params)
        except SlackError as exc:
            reply = Reply({"ok": False, "error": exc.error})
        self._record(method, params, reply)
        self._send(reply.status, reply.body, reply.headers)

    def _record(self, method: str, params: JsonDict, reply: Reply) -> None:
        """Keep the request for ``GET /requests``, minus token values: they must not leak into test output."""
        headers = {k: REDACTED if k.lower() == "authorization" else v for k, v in self.headers.items()}
        self.server.state.record_request(
            {
                "method": method,
                "http_method": self.command,
                "path": urlsplit(self.path).path,
                "headers": headers,
                "body": {k: REDACTED if k == "token" else v for k, v in params.items()},
                "time": _now(),
                "status": reply.status,
                "ok": reply.body["ok"],
                "error": reply.body.get("error"),
            }
        )

    def _call(self, method: str, params: JsonDict) -> Reply:
        api_method = API_METHODS.get(method)
        if api_method is None:
            raise SlackError("unknown_method")
        scheme, _, bearer = self.headers.get("Authorization", "").partition(" ")
        token = bearer if scheme.lower() == "bearer" and bearer else str(params.get("token") or "")
        if not token:
            raise SlackError("not_authed")
        if not token.startswith(TOKEN_PREFIXES):
            raise SlackError("invalid_auth")
        return Reply({"ok": True, **api_method(self.server.state, params)})

    def _params(self, raw: bytes) -> JsonDict:
        """Query string and body arguments; Slack takes JSON and form-encoded bodies alike."""
        params: JsonDict = dict(parse_qsl(urlsplit(self.path).query))
        if not raw:
            return params
        content_type = self.headers.get_content_type()
        if content_type == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("invalid_json")
        elif content_type == "application/x-www-form-urlencoded":
            body = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        else:
            raise SlackError("invalid_form_data")
        return {**params, **body}

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError:
            pass  # the client gave up waiting (a delay fault); nobody is left to answer


class LocalSlack(ThreadingHTTPServer):
    """The stand-in server; as a context manager it serves from a background thread."""

    block_on_close = False  # do not let a delayed answer hold up shutdown

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        super().__init__((host, port), SlackHandler)
        self.state = SlackState()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LocalSlack:
        threading.Thread(target=self.serve_forever, name="local-slack", daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve in the foreground until SIGTERM or SIGINT, as ``python -m local.slack`` does."""
    server = LocalSlack(host, port)

    def stop(signum: int, frame: object) -> None:
        # shutdown() waits for serve_forever() to return, so it cannot run in this (the serving) thread.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"local Slack listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local stand-in for the Slack Web API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_SLACK_PORT", DEFAULT_PORT)))
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
