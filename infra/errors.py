"""The base of every domain error: an RFC 9457 problem with a stable type."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

PROBLEM_BASE = "https://passerelle.app/problems/"


class ProblemError(Exception):
    status: int = 400
    type_slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.type_slug


class NotFound(ProblemError):
    status = 404
    type_slug = "not-found"
    title = "Not found"


class Forbidden(ProblemError):
    status = 403
    type_slug = "forbidden"
    title = "Forbidden"


class Unauthorized(ProblemError):
    status = 401
    type_slug = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="passerelle"'}, **extra)


class Conflict(ProblemError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class PreconditionFailed(ProblemError):
    status = 412
    type_slug = "precondition-failed"
    title = "The resource changed since you read it"


class RateLimited(ProblemError):
    status = 429
    type_slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(
            detail or f"Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


class UnsupportedMediaType(ProblemError):
    status = 415
    type_slug = "unsupported-media-type"
    title = "Unsupported media type"


class ServiceUnavailable(ProblemError):
    status = 503
    type_slug = "service-unavailable"
    title = "Service unavailable"


class TokenEncryptionNotConfigured(ServiceUnavailable):
    """The token vault (infra.vault) has no key: social accounts and webhook secrets need it."""

    type_slug = "token-encryption-not-configured"
    title = "TOKEN_ENCRYPTION_KEYS is not set: accounts cannot be connected"


class InvalidFields(ProblemError):
    """The request's own fields are wrong: the same problem as a schema validation error, with
    `errors: [{pointer, message, code}]`, for rules a schema cannot express."""

    status = 422
    type_slug = "validation-error"
    title = "Some fields are not valid"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{len(errors)} field(s) need attention.", errors=errors)

    @classmethod
    def one(cls, pointer: str, message: str, code: str) -> InvalidFields:
        return cls([{"pointer": pointer, "message": message, "code": code}])


@contextmanager
def body_reference(pointer: str) -> Iterator[None]:
    """Around the lookup of an object that the request body names by id: the object must be
    of the caller's agency and visible to the caller, else the body is wrong, a 422 naming
    the field (a 404 would say the URL is). The lookup's own problem becomes the field's code."""
    try:
        yield
    except NotFound as exc:
        raise InvalidFields.one(pointer, exc.detail or exc.title, exc.type_slug) from exc


def refuse_unknown_references(
    pointer: str, given: Sequence[uuid.UUID], known: Collection[uuid.UUID], what: str
) -> None:
    """The ids of a list field that name no `what` the caller may see, each named by index."""
    unknown = [
        {
            "pointer": f"{pointer}/{index}",
            "message": f"No {what} {value} that you can see in this agency.",
            "code": "unknown-reference",
        }
        for index, value in enumerate(given)
        if value not in known
    ]
    if unknown:
        raise InvalidFields(unknown)
