"""Saved Logs Insights queries (query definitions) for the local AWS: moto 5.2.5 does not implement them.

PutQueryDefinition (create, or update by ``queryDefinitionId``), DescribeQueryDefinitions (name prefix,
``maxResults``, ``nextToken``) and DeleteQueryDefinition, answered as CloudWatch Logs answers them. They are
kept on moto's Logs backend, so ``POST /moto-api/reset`` forgets them with everything else. Only storage:
moto cannot run Logs Insights queries (``start_query`` ignores ``filter`` and ``stats``).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from local.aws.moto_surface import LogsBackend, LogsResponse, ResourceNotFoundException
from local.aws.moto_surface import LogsInvalidParameterException as InvalidParameterException

MAX_RESULTS = 1000


def _definitions(backend: LogsBackend) -> dict[str, dict[str, Any]]:
    """The backend's query definitions by id; a backend that moto has reset starts with none."""
    return backend.__dict__.setdefault("query_definitions", {})


def put_query_definition(self: LogsResponse) -> str:
    definitions = _definitions(self.logs_backend)
    name, query = self._get_param("name"), self._get_param("queryString")
    if not name or not query:
        raise InvalidParameterException("name and queryString are required")
    query_id = self._get_param("queryDefinitionId")
    if query_id and query_id not in definitions:
        raise ResourceNotFoundException(f"Query definition {query_id} does not exist")
    query_id = query_id or str(uuid.uuid4())
    definitions[query_id] = {
        "queryLanguage": self._get_param("queryLanguage") or "CWLI",
        "queryDefinitionId": query_id,
        "name": name,
        "queryString": query,
        "lastModified": int(time.time() * 1000),
        "logGroupNames": self._get_param("logGroupNames") or [],  # an update without them drops them
    }
    return json.dumps({"queryDefinitionId": query_id})


def describe_query_definitions(self: LogsResponse) -> str:
    prefix = self._get_param("queryDefinitionNamePrefix") or ""
    limit = self._get_param("maxResults") or MAX_RESULTS
    if not 1 <= limit <= MAX_RESULTS:
        raise InvalidParameterException(f"maxResults must be between 1 and {MAX_RESULTS}")
    start = int(self._get_param("nextToken") or 0)
    matching = [d for d in _definitions(self.logs_backend).values() if d["name"].startswith(prefix)]
    page: dict[str, Any] = {"queryDefinitions": matching[start : start + limit]}
    if start + limit < len(matching):
        page["nextToken"] = str(start + limit)
    return json.dumps(page)


def delete_query_definition(self: LogsResponse) -> str:
    query_id = self._get_param("queryDefinitionId")
    if _definitions(self.logs_backend).pop(query_id, None) is None:
        raise ResourceNotFoundException(f"Query definition {query_id} does not exist")
    return json.dumps({"success": True})


def install() -> None:
    """Teach moto's Logs responses the three actions; calling it again changes nothing."""
    for handler in (put_query_definition, describe_query_definitions, delete_query_definition):
        setattr(LogsResponse, handler.__name__, handler)
