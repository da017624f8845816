"""The Airflow REST API of the local stack, as a user's script calls it: a JWT from ``/auth/token``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from local.settings import ADMIN_PASSWORD, ADMIN_USER


class ApiError(Exception):
    """A non-2xx answer of the Airflow REST API, with its status and decoded body."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


class Api:
    """The Airflow REST API as a user's script calls it: a JWT from ``/auth/token`` (admin / admin)."""

    def __init__(self, url: str):
        self.url = url
        token = self.call(
            "POST", "/auth/token", {"username": ADMIN_USER, "password": ADMIN_PASSWORD}, auth=False
        )
        self.token = token["access_token"]

    def call(self, method: str, path: str, body: dict | None = None, auth: bool = True):
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            try:
                detail = json.loads(text)
            except ValueError:
                detail = text
            raise ApiError(error.code, detail) from None
