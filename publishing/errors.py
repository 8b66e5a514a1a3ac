"""Errors of publishing, each an RFC 9457 problem with a stable type."""

from __future__ import annotations

from typing import Any

from infra.errors import Conflict, NotFound, ProblemError


class PublicationNotFound(NotFound):
    type_slug = "publication-not-found"
    title = "No such publication"


class CannotRetry(Conflict):
    type_slug = "publication-cannot-retry"
    title = "This publication cannot be retried now"


class ConfirmationRequired(ProblemError):
    status = 422
    type_slug = "confirm-not-published"
    title = "Check the account first"


class NotPublishable(Conflict):
    type_slug = "content-not-publishable"
    title = "Only an approved item can be published"


class PublishingChecksFailed(ProblemError):
    """Every problem found, each with its platform, so the author fixes them in one go."""

    status = 422
    type_slug = "publishing-checks-failed"
    title = "The post cannot be published as it is"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        listed = "; ".join(f"{p['platform']}: {p['message']}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"Fix these before scheduling: {listed}{more}", problems=problems)
