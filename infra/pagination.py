"""Cursor pagination: an opaque cursor carrying the last row's sort key."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import and_, false, or_, true
from sqlalchemy.sql import ColumnElement, Select

from infra.errors import ProblemError

T = TypeVar("T")
Q = TypeVar("Q")  # a select statement, of SQLAlchemy or SQLModel

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class InvalidCursor(ProblemError):
    status = 400
    type_slug = "invalid-cursor"
    title = "The cursor is not valid for this list"


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as ?cursor= to get the next page")


class JsonPage(TypedDict):
    """A page sent as it was read, for lists too hot for a validation pass: its items are
    mappings of a `Page[...]` model's fields with JSON-ready values (see `api.encoding`)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(*values: Any) -> str:
    # Not ASCII-escaped: a name of 255 accented letters stays a cursor of reasonable length.
    raw = json.dumps([str(v) for v in values], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, size: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor() from exc
    if not isinstance(values, list) or len(values) != size:
        raise InvalidCursor()
    if not all(isinstance(v, str) for v in values):
        raise InvalidCursor()
    # PostgreSQL refuses NUL and the driver lone surrogates: such a cursor was not made by us
    # and must not reach SQL.
    if any("\x00" in v or not _utf8(v) for v in values):
        raise InvalidCursor()
    return values


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def parse_int(text: str) -> int:
    """An integer sort key read back from a cursor: one that fits PostgreSQL's integer."""
    value = int(text)
    if not -(2**31) <= value < 2**31:
        raise ValueError("out of range")
    return value


# ---------------------------------------------------------------------------------------------
# Keyset pages over several sort keys


@dataclass(frozen=True)
class SortKey:
    """One column of a list's order: the SQL expression, how to read its value from a fetched
    row, and how to read it back from a cursor. A nullable key sorts its NULLs last."""

    expr: Any
    read: Callable[[Any], Any]
    parse: Callable[[str], Any] = str
    descending: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Keyset:
    """A stable order (the last key must be unique, usually the id) and the pages over it: each
    page starts strictly after the previous page's last row, so rows added or removed meanwhile
    never make a page repeat or skip one that stayed. No OFFSET."""

    name: str
    keys: Sequence[SortKey]

    def apply(self, query: Q, *, cursor: str | None, limit: int) -> Q:
        """Order, start after the cursor's row, and fetch one row more than the page."""
        statement: Select[Any] = query  # type: ignore[assignment]
        if cursor is not None:
            statement = statement.where(self._after(self.decode(cursor)))
        order = []
        for key in self.keys:
            column = key.expr.desc() if key.descending else key.expr.asc()
            order.append(column.nulls_last() if key.nullable else column)
        return statement.order_by(*order).limit(limit + 1)  # type: ignore[return-value]

    def page(self, rows: Sequence[Any], *, limit: int) -> tuple[list[Any], str | None]:
        """The page's rows and the cursor of the next page (None on the last one)."""
        if len(rows) <= limit:
            return list(rows), None
        last = rows[limit - 1]
        values = [self._encode(key, key.read(last)) for key in self.keys]
        return list(rows[:limit]), encode_cursor(self.name, *values)

    @staticmethod
    def _encode(key: SortKey, value: Any) -> str:
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        if key.nullable:
            # "" is NULL; any value is prefixed, so an empty string stays distinct from NULL.
            return "" if value is None else "=" + text
        return text

    def decode(self, cursor: str) -> list[Any]:
        """The sort key values a cursor of this list carries (InvalidCursor otherwise)."""
        name, *raw = decode_cursor(cursor, size=len(self.keys) + 1)
        if name != self.name:
            raise InvalidCursor("This cursor belongs to another list or order.")
        values: list[Any] = []
        try:
            for key, text in zip(self.keys, raw, strict=True):
                if not key.nullable:
                    values.append(key.parse(text))
                elif text == "":
                    values.append(None)
                elif text.startswith("="):
                    values.append(key.parse(text[1:]))
                else:
                    raise InvalidCursor()
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidCursor() from exc
        return values

    def _after(self, values: list[Any]) -> ColumnElement[bool]:
        """Rows strictly after the cursor's row: equal on the first keys, then beyond on one."""
        options: list[ColumnElement[bool]] = []
        for i, key in enumerate(self.keys):
            equal = [_same(k.expr, v) for k, v in zip(self.keys[:i], values[:i], strict=True)]
            options.append(and_(true(), *equal, _beyond(key, values[i])))
        return or_(false(), *options)


def id_key(
    expr: Any, read: Callable[[Any], Any] = lambda row: row.id, *, descending: bool = False
) -> SortKey:
    """The last key of most orders: the row's UUID id, unique, so the order is total."""
    return SortKey(expr, read, parse=uuid.UUID, descending=descending)


def _same(expr: Any, value: Any) -> ColumnElement[bool]:
    return expr.is_(None) if value is None else expr == value  # type: ignore[no-any-return]


def _beyond(key: SortKey, value: Any) -> ColumnElement[bool]:
    if value is None:
        return false()  # NULLs come last: nothing sorts after the cursor's NULL on this key
    beyond: ColumnElement[bool] = key.expr < value if key.descending else key.expr > value
    return or_(beyond, key.expr.is_(None)) if key.nullable else beyond
