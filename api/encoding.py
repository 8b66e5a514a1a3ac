"""Responses encoded once, straight to bytes.

A route that returns a model has FastAPI check it against the response model and then
serialize it; for the hottest reads, whose rows come typed from PostgreSQL, both passes cost
more than the query. Such a route declares its `response_model` (the OpenAPI document and the
contract tests still hold it to the schema) and returns `json_response(...)`: orjson writes
UUIDs, datetimes (UTC as "Z", as pydantic does) and str enums itself.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import Response

_OPTIONS = orjson.OPT_UTC_Z


def _default(value: Any) -> Any:
    # asyncpg returns its own UUID subclass, which orjson does not take for a UUID.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(content: Any, *, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(content, default=_default, option=_OPTIONS),
        status_code=status_code,
        media_type="application/json",
    )
