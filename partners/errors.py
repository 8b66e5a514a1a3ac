"""Errors of partner apps, partner tokens and webhooks, each with its problem type."""

from __future__ import annotations

from typing import Any

from infra.errors import Forbidden, NotFound, ProblemError


class PartnerAppNotFound(NotFound):
    type_slug = "partner-app-not-found"
    title = "No such partner app"


class WebhookEndpointNotFound(NotFound):
    type_slug = "webhook-endpoint-not-found"
    title = "No such webhook endpoint"


class WebhookDeliveryNotFound(NotFound):
    type_slug = "webhook-delivery-not-found"
    title = "No such webhook delivery"


class InsufficientScope(Forbidden):
    type_slug = "insufficient-scope"
    title = "The access token lacks the scope this operation needs"

    def __init__(self, scope: str, operation: str) -> None:
        super().__init__(
            f"Operation '{operation}' needs the scope '{scope}'; ask for it when requesting "
            "the token (the partner app must have been granted it).",
            required_scope=scope,
            headers={
                "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"',
            },
        )


class NotForPartners(Forbidden):
    type_slug = "not-for-partner-apps"
    title = "This operation is not part of the partner API"


class FeatureNotInPlan(ProblemError):
    status = 403
    type_slug = "feature-not-in-plan"
    title = "Your plan does not include this feature"


class UnsafeWebhookUrl(ProblemError):
    status = 422
    type_slug = "unsafe-webhook-url"
    title = "Webhooks cannot be sent to this address"


class OAuthError(ProblemError):
    """RFC 6749 §5.2 errors, as problem documents that also carry `error` and
    `error_description`, so OAuth client libraries read them as they expect."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        *,
        headers_extra: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.status = status
        self.type_slug = f"oauth-{error.replace('_', '-')}"
        self.title = "The token request was refused"
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **(headers_extra or {})}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="passerelle"'
        super().__init__(
            description, error=error, error_description=description, headers=headers, **extra
        )


class PartnerAppRevoked(ProblemError):
    status = 409
    type_slug = "partner-app-revoked"
    title = "This partner app is revoked"


class EndpointDisabled(ProblemError):
    status = 409
    type_slug = "webhook-endpoint-disabled"
    title = "This webhook endpoint is disabled"
