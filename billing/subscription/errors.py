"""Errors of the agency's subscription and of Stripe, each an RFC 9457 problem with a stable
type."""

from __future__ import annotations

from typing import Any

from infra.errors import ProblemError


class StripeNotConfigured(ProblemError):
    status = 503
    type_slug = "stripe-not-configured"
    title = "Stripe is not configured on this server"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(
            detail
            or "Set STRIPE_API_KEY (and STRIPE_WEBHOOK_SECRET for webhooks) to use billing. "
            "Client invoices are handled as external invoices meanwhile.",
            **extra,
        )


class StripeUnavailable(ProblemError):
    status = 502
    type_slug = "stripe-unavailable"
    title = "Stripe did not answer; try again shortly"


class InvalidStripeSignature(ProblemError):
    status = 400
    type_slug = "invalid-stripe-signature"
    title = "The Stripe-Signature header does not verify"


class UnknownPlan(ProblemError):
    status = 422
    type_slug = "unknown-plan"
    title = "No such plan in the catalogue"


class SubscriptionExists(ProblemError):
    status = 409
    type_slug = "subscription-exists"
    title = "This agency already has a subscription"


class NoBillingAccount(ProblemError):
    status = 409
    type_slug = "no-billing-account"
    title = "This agency has no Stripe customer yet"


class UnknownStripeAccount(ProblemError):
    status = 422
    type_slug = "unknown-stripe-account"
    title = "Stripe does not know this connected account"


class UnknownAgency(ProblemError):
    status = 404
    type_slug = "agency-not-found"
    title = "No agency has this address"
