"""The local Slack stand-in, driven the way the project drives Slack: real slack_sdk clients over HTTP.

The server runs as ``python -m local.slack`` in a subprocess, as the local stack runs it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*data_processor* failed"}}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _local(url: str, path: str, method: str = "GET", payload: Any = None) -> Any:
    """Call one of the stand-in's own JSON endpoints."""
    data = None if payload is None else json.dumps(payload).encode()
    request = Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urlopen(request, timeout=5) as response:
        return json.load(response)


def _answers(url: str) -> bool:
    try:
        _local(url, "/messages")
    except OSError:
        return False
    return True


def _wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def slack_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("local_slack") / "server.log"
    with log.open("wb") as log_file:
        command = [sys.executable, "-m", "local.slack", "--port", str(port)]
        server = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: server.poll() is not None or _answers(url))
        assert server.poll() is None, f"local Slack exited early:\n{log.read_text()}"
        assert f"local Slack listening on {url}" in log.read_text()
        yield url
    finally:
        server.terminate()
        try:
            returncode = server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise
    assert returncode == 0, f"local Slack did not shut down cleanly on SIGTERM:\n{log.read_text()}"


@pytest.fixture(autouse=True)
def _reset(slack_url: str) -> None:
    _local(slack_url, "/_local/reset", "POST")


@pytest.fixture
def client(slack_url: str) -> WebClient:
    return WebClient(token="xoxb-test", base_url=f"{slack_url}/api/")


def _fault(slack_url: str, **fault: Any) -> None:
    _local(slack_url, "/_local/faults", "POST", fault)


def test_auth_test(client: WebClient) -> None:
    response = client.auth_test()

    assert response["ok"] is True
    assert (response["team_id"], response["user_id"]) == ("T000LOCAL", "U000LOCAL")


def test_posted_messages_are_listed_in_order(client: WebClient, slack_url: str) -> None:
    plain = client.chat_postMessage(channel="#batch-alerts", text="job failed")
    rich = client.chat_postMessage(channel="C0123456789", text="rich", blocks=BLOCKS, thread_ts=plain["ts"])

    assert plain["channel"].startswith("C") and rich["channel"] == "C0123456789"
    assert rich["message"]["blocks"] == BLOCKS
    assert float(plain["ts"]) < float(rich["ts"])
    messages = _local(slack_url, "/messages")
    assert [(m["channel"], m["text"], m["blocks"], m["thread_ts"], m["ts"]) for m in messages] == [
        ("#batch-alerts", "job failed", None, None, plain["ts"]),
        ("C0123456789", "rich", BLOCKS, plain["ts"], rich["ts"]),
    ]


def test_form_encoded_post_with_token_field(slack_url: str) -> None:
    client = WebClient(token=None, base_url=f"{slack_url}/api/")
    form = {"token": "xoxp-form", "channel": "#batch-alerts", "blocks": json.dumps(BLOCKS)}

    client.api_call("chat.postMessage", data=form)

    [message] = _local(slack_url, "/messages")
    assert (message["channel"], message["blocks"]) == ("#batch-alerts", BLOCKS)
    [request] = _local(slack_url, "/requests")
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert request["body"]["token"] == "(redacted)"


@pytest.mark.parametrize(("token", "error"), [(None, "not_authed"), ("bot-token", "invalid_auth")])
def test_bad_tokens_are_refused(slack_url: str, token: str | None, error: str) -> None:
    client = WebClient(token=token, base_url=f"{slack_url}/api/")

    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="#batch-alerts", text="job failed")

    assert raised.value.response["error"] == error
    assert raised.value.response.status_code == 200


@pytest.mark.parametrize(
    ("message", "error"),
    [({"channel": "", "text": "job failed"}, "channel_not_found"), ({"channel": "#batch-alerts"}, "no_text")],
)
def test_invalid_messages_are_refused(client: WebClient, message: dict[str, str], error: str) -> None:
    with pytest.raises(SlackApiError) as raised:
        client.api_call("chat.postMessage", json=message)  # chat_postMessage() would warn about no text

    assert raised.value.response["error"] == error


def test_unknown_method(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        client.api_call("chat.postEphemeralish")

    assert raised.value.response["error"] == "unknown_method"


def test_rate_limit_without_retry_handler(client: WebClient, slack_url: str) -> None:
    _fault(slack_url, method="chat.postMessage", status=429, retry_after=1, times=2)

    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="#batch-alerts", text="job failed")

    response = raised.value.response
    assert (response.status_code, response["error"]) == (429, "ratelimited")
    assert response.headers["Retry-After"] == "1"
    assert _local(slack_url, "/messages") == []


def test_rate_limit_retry_handler_delivers_once_the_fault_is_spent(slack_url: str) -> None:
    retry = RateLimitErrorRetryHandler(max_retry_count=1)
    client = WebClient(token="xoxb-test", base_url=f"{slack_url}/api/", retry_handlers=[retry])
    _fault(slack_url, method="chat.postMessage", status=429, retry_after=1, times=1)

    response = client.chat_postMessage(channel="#batch-alerts", text="job failed")

    assert response["ok"] is True
    assert [m["ts"] for m in _local(slack_url, "/messages")] == [response["ts"]]
    assert [r["status"] for r in _local(slack_url, "/requests")] == [429, 200]
    assert _local(slack_url, "/_local/faults") == []


def test_slow_answer_makes_the_client_time_out(slack_url: str) -> None:
    client = WebClient(token="xoxb-test", base_url=f"{slack_url}/api/", timeout=1)
    _fault(slack_url, method="*", delay=1.5, times=1)

    with pytest.raises(TimeoutError):
        client.auth_test()

    # The late answer is still recorded; wait for it so it cannot spill into the next test.
    _wait_for(lambda: _local(slack_url, "/requests"), timeout=5)
    assert client.auth_test()["ok"] is True


def test_error_fault_hits_only_its_method_and_times(client: WebClient, slack_url: str) -> None:
    _fault(slack_url, method="chat.postMessage", error="channel_not_found", times=1)

    assert client.auth_test()["ok"] is True
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="#batch-alerts", text="job failed")
    assert raised.value.response["error"] == "channel_not_found"
    assert client.chat_postMessage(channel="#batch-alerts", text="job failed")["ok"] is True


def test_server_error_fault_lasts_until_cleared(client: WebClient, slack_url: str) -> None:
    _fault(slack_url, status=500)

    for _ in range(2):
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="#batch-alerts", text="job failed")
        assert raised.value.response.status_code == 500

    _local(slack_url, "/_local/faults", "DELETE")
    assert client.chat_postMessage(channel="#batch-alerts", text="job failed")["ok"] is True


def test_requests_record_failed_calls_without_tokens(client: WebClient, slack_url: str) -> None:
    with pytest.raises(SlackApiError):
        WebClient(token=None, base_url=f"{slack_url}/api/").auth_test()
    with pytest.raises(SlackApiError):
        client.api_call("chat.postMessage", json={"channel": "#batch-alerts"})
    client.chat_postMessage(channel="#batch-alerts", text="job failed")

    requests = _local(slack_url, "/requests")
    assert [(r["method"], r["status"], r["ok"], r["error"]) for r in requests] == [
        ("auth.test", 200, False, "not_authed"),
        ("chat.postMessage", 200, False, "no_text"),
        ("chat.postMessage", 200, True, None),
    ]
    assert requests[2]["body"] == {"channel": "#batch-alerts", "text": "job failed"}
    assert "xoxb-test" not in json.dumps(requests)
    assert len(_local(slack_url, "/messages")) == 1

    _local(slack_url, "/messages", "DELETE")
    assert _local(slack_url, "/requests") == [] and _local(slack_url, "/messages") == []


def test_airflow_slack_hook_posts_to_the_stand_in(
    slack_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = {"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": f"{slack_url}/api/"}}
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_LOCAL", json.dumps(connection))
    from airflow.providers.slack.hooks.slack import SlackHook

    response = SlackHook(slack_conn_id="slack_local").call(
        "chat.postMessage", json={"channel": "#batch-alerts", "text": "Airflow", "blocks": BLOCKS}
    )

    assert response["ok"] is True
    [message] = _local(slack_url, "/messages")
    assert (message["channel"], message["text"], message["blocks"]) == ("#batch-alerts", "Airflow", BLOCKS)
