"""The deprecation policy, in code: an operation listed here keeps working until its sunset,
and every answer to it says so with `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and a
`Link` to its successor; the OpenAPI document marks it deprecated, so generated clients warn.

Policy: an operation is deprecated at least six months before its sunset, and only once its
successor exists. Nothing is deprecated in v1 yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from fastapi import FastAPI, Request

POLICY_URL = "https://passerelle.app/docs/api/deprecation-policy"


@dataclass(frozen=True)
class Deprecation:
    since: datetime
    sunset: datetime
    successor: str | None = None
    """A path or URL documenting what to use instead."""

    def headers(self) -> dict[str, str]:
        links = [f'<{POLICY_URL}>; rel="deprecation"; type="text/html"']
        if self.successor:
            links.append(f'<{self.successor}>; rel="successor-version"')
        return {
            "Deprecation": f"@{int(self.since.timestamp())}",
            "Sunset": format_datetime(self.sunset, usegmt=True),
            "Link": ", ".join(links),
        }


DEPRECATIONS: Mapping[str, Deprecation] = {}
"""Operation id -> its deprecation."""


async def announce_deprecation(request: Request) -> None:
    deprecations: Mapping[str, Deprecation] = getattr(request.app.state, "deprecations", {})
    if not deprecations:
        return
    name = getattr(request.scope.get("route"), "name", None)
    deprecation = deprecations.get(name) if name else None
    if deprecation is None:
        return
    headers: dict[str, str] = request.state._state.setdefault("response_headers", {})
    headers.update(deprecation.headers())


def mark_deprecated_in_openapi(app: FastAPI, deprecations: Mapping[str, Deprecation]) -> None:
    """Wraps app.openapi so deprecated operations carry `deprecated: true` and their sunset."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                deprecation = deprecations.get(operation.get("operationId", ""))
                if deprecation is not None:
                    operation["deprecated"] = True
                    operation["x-sunset"] = deprecation.sunset.date().isoformat()
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
