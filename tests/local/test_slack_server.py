"""The local Slack stand-in, driven the way the project drives Slack: real slack_sdk clients over HTTP.

The server runs as ``python -m local.slack`` in a subprocess, as the local stack runs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from tests.support import LocalServer, wait_until

pytestmark = pytest.mark.integration  # subprocesses or servers: not the unit lane

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*data_processor* failed"}}]


@pytest.fixture(scope="module")
def slack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = LocalServer("local.slack", "/messages", tmp_path_factory.mktemp("local_slack") / "server.log")
    try:
        assert f"local Slack listening on {server.url}" in server.log.read_text()
        yield server
    finally:
        returncode = server.stop()
    assert returncode == 0, f"local Slack did not shut down cleanly on SIGTERM:\n{server.log.read_text()}"


@pytest.fixture(autouse=True)
def _reset(slack: LocalServer) -> None:
    slack.post("/_local/reset")


@pytest.fixture
def client(slack: LocalServer) -> WebClient:
    return WebClient(token="xoxb-test", base_url=f"{slack.url}/api/")


def _fault(slack: LocalServer, **fault: Any) -> None:
    slack.post("/_local/faults", fault)


def test_auth_test(client: WebClient) -> None:
    response = client.auth_test()

    assert response["ok"] is True
    assert (response["team_id"], response["user_id"]) == ("T000LOCAL", "U000LOCAL")


def test_posted_messages_are_listed_in_order(client: WebClient, slack: LocalServer) -> None:
    plain = client.chat_postMessage(channel="#batch-alerts", text="job failed")
    rich = client.chat_postMessage(channel="C0123456789", text="rich", blocks=BLOCKS, thread_ts=plain["ts"])

    assert plain["channel"].startswith("C") and rich["channel"] == "C0123456789"
    assert rich["message"]["blocks"] == BLOCKS
    assert float(plain["ts"]) < float(rich["ts"])
    messages = slack.get("/messages")
    assert [(m["channel"], m["text"], m["blocks"], m["thread_ts"], m["ts"]) for m in messages] == [
        ("#batch-alerts", "job failed", None, None, plain["ts"]),
        ("C0123456789", "rich", BLOCKS, plain["ts"], rich["ts"]),
    ]


def test_form_encoded_post_with_token_field(slack: LocalServer) -> None:
    client = WebClient(token=None, base_url=f"{slack.url}/api/")
    form = {"token": "xoxp-form", "channel": "#batch-alerts", "blocks": json.dumps(BLOCKS)}

    client.api_call("chat.postMessage", data=form)

    [message] = slack.get("/messages")
    assert (message["channel"], message["blocks"]) == ("#batch-alerts", BLOCKS)
    [request] = slack.get("/requests")
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert request["body"]["token"] == "(redacted)"


@pytest.mark.parametrize(("token", "error"), [(None, "not_authed"), ("bot-token", "invalid_auth")])
def test_bad_tokens_are_refused(slack: LocalServer, token: str | None, error: str) -> None:
    client = WebClient(token=token, base_url=f"{slack.url}/api/")

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


def test_rate_limit_without_retry_handler(client: WebClient, slack: LocalServer) -> None:
    _fault(slack, method="chat.postMessage", status=429, retry_after=1, times=2)

    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="#batch-alerts", text="job failed")

    response = raised.value.response
    assert (response.status_code, response["error"]) == (429, "ratelimited")
    assert response.headers["Retry-After"] == "1"
    assert slack.get("/messages") == []


def test_rate_limit_retry_handler_delivers_once_the_fault_is_spent(slack: LocalServer) -> None:
    retry = RateLimitErrorRetryHandler(max_retry_count=1)
    client = WebClient(token="xoxb-test", base_url=f"{slack.url}/api/", retry_handlers=[retry])
    _fault(slack, method="chat.postMessage", status=429, retry_after=1, times=1)

    response = client.chat_postMessage(channel="#batch-alerts", text="job failed")

    assert response["ok"] is True
    assert [m["ts"] for m in slack.get("/messages")] == [response["ts"]]
    assert [r["status"] for r in slack.get("/requests")] == [429, 200]
    assert slack.get("/_local/faults") == []


def test_slow_answer_makes_the_client_time_out(slack: LocalServer) -> None:
    client = WebClient(token="xoxb-test", base_url=f"{slack.url}/api/", timeout=1)
    _fault(slack, method="*", delay=1.5, times=1)

    with pytest.raises(TimeoutError):
        client.auth_test()

    # The late answer is still recorded; wait for it so it cannot spill into the next test.
    wait_until(lambda: slack.get("/requests"), timeout=5, what="the late request to be recorded")
    assert client.auth_test()["ok"] is True


def test_error_fault_hits_only_its_method_and_times(client: WebClient, slack: LocalServer) -> None:
    _fault(slack, method="chat.postMessage", error="channel_not_found", times=1)

    assert client.auth_test()["ok"] is True
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="#batch-alerts", text="job failed")
    assert raised.value.response["error"] == "channel_not_found"
    assert client.chat_postMessage(channel="#batch-alerts", text="job failed")["ok"] is True


def test_server_error_fault_lasts_until_cleared(client: WebClient, slack: LocalServer) -> None:
    _fault(slack, status=500)

    for _ in range(2):
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="#batch-alerts", text="job failed")
        assert raised.value.response.status_code == 500

    slack.control("DELETE", "/_local/faults")
    assert client.chat_postMessage(channel="#batch-alerts", text="job failed")["ok"] is True


def test_requests_record_failed_calls_without_tokens(client: WebClient, slack: LocalServer) -> None:
    with pytest.raises(SlackApiError):
        WebClient(token=None, base_url=f"{slack.url}/api/").auth_test()
    with pytest.raises(SlackApiError):
        client.api_call("chat.postMessage", json={"channel": "#batch-alerts"})
    client.chat_postMessage(channel="#batch-alerts", text="job failed")

    requests = slack.get("/requests")
    assert [(r["method"], r["status"], r["ok"], r["error"]) for r in requests] == [
        ("auth.test", 200, False, "not_authed"),
        ("chat.postMessage", 200, False, "no_text"),
        ("chat.postMessage", 200, True, None),
    ]
    assert requests[2]["body"] == {"channel": "#batch-alerts", "text": "job failed"}
    assert "xoxb-test" not in json.dumps(requests)
    assert len(slack.get("/messages")) == 1

    slack.control("DELETE", "/messages")
    assert slack.get("/requests") == [] and slack.get("/messages") == []


def test_airflow_slack_hook_posts_to_the_stand_in(
    slack: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = {"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": f"{slack.url}/api/"}}
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_LOCAL", json.dumps(connection))
    from airflow.providers.slack.hooks.slack import SlackHook

    response = SlackHook(slack_conn_id="slack_local").call(
        "chat.postMessage", json={"channel": "#batch-alerts", "text": "Airflow", "blocks": BLOCKS}
    )

    assert response["ok"] is True
    [message] = slack.get("/messages")
    assert (message["channel"], message["text"], message["blocks"]) == ("#batch-alerts", "Airflow", BLOCKS)
