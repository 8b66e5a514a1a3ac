"""The query parameters every list takes: `limit` (bounded) and `cursor` (opaque)."""

from typing import Annotated

from fastapi import Query

from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"At most {MAX_LIMIT} items per page")]
# A cursor carries the last row's sort key, which may be a name of 255 characters of up to
# four UTF-8 bytes each, in base64.
Cursor = Annotated[
    str | None,
    Query(max_length=2048, description="The `next_cursor` of the previous page"),
]

__all__ = ["DEFAULT_LIMIT", "Cursor", "Limit"]
