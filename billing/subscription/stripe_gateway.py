"""Every call we make to Stripe, through the official SDK, as plain dicts.

One place knows the SDK: the base address (`STRIPE_API_BASE`, the tests' local Stripe server),
timeouts, idempotency keys and the connected account header. The SDK's own retries are off:
our jobs retry with backoff and their idempotency keys make a retry safe.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import stripe

from billing.subscription import errors
from infra.settings import Settings

TRANSIENT = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)
"""Failures worth retrying: Stripe unreachable, slow, 5xx or throttling."""


class StripeGateway:
    def __init__(self, api_key: str, api_base: str, timeout: float) -> None:
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            max_network_retries=0,
            http_client=stripe.HTTPXClient(timeout=timeout),
        )
        self.v1 = self._client.v1

    @staticmethod
    def options(idempotency_key: str | None = None, account: str | None = None) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if idempotency_key:
            opts["idempotency_key"] = idempotency_key
        if account:
            opts["stripe_account"] = account
        return opts

    async def create_customer(
        self, params: dict[str, Any], *, key: str, account: str | None = None
    ) -> dict[str, Any]:
        return _plain(
            await self.v1.customers.create_async(params, self.options(key, account))  # type: ignore[arg-type]
        )

    async def checkout_session(self, params: dict[str, Any], *, key: str) -> dict[str, Any]:
        return _plain(
            await self.v1.checkout.sessions.create_async(params, self.options(key))  # type: ignore[arg-type]
        )

    async def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        return _plain(await self.v1.checkout.sessions.retrieve_async(session_id))

    async def portal_session(self, params: dict[str, Any]) -> dict[str, Any]:
        return _plain(await self.v1.billing_portal.sessions.create_async(params))  # type: ignore[arg-type]

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        return _plain(await self.v1.subscriptions.retrieve_async(subscription_id))

    async def cancel_subscription(self, subscription_id: str) -> dict[str, Any]:
        """Ends the subscription now (the agency's contract ended). Canceling an already canceled
        subscription is harmless, so a retry after a crash needs no idempotency key."""
        return _plain(await self.v1.subscriptions.cancel_async(subscription_id))

    async def set_item_quantity(self, item_id: str, quantity: int, *, key: str) -> dict[str, Any]:
        return _plain(
            await self.v1.subscription_items.update_async(
                item_id,
                {"quantity": quantity, "proration_behavior": "create_prorations"},
                self.options(key),  # type: ignore[arg-type]
            )
        )

    async def retrieve_account(self, account_id: str) -> dict[str, Any]:
        return _plain(await self.v1.accounts.retrieve_async(account_id))

    async def create_invoice(
        self, params: dict[str, Any], *, key: str, account: str
    ) -> dict[str, Any]:
        return _plain(
            await self.v1.invoices.create_async(params, self.options(key, account))  # type: ignore[arg-type]
        )

    async def create_invoice_item(
        self, params: dict[str, Any], *, key: str, account: str
    ) -> dict[str, Any]:
        return _plain(
            await self.v1.invoice_items.create_async(params, self.options(key, account))  # type: ignore[arg-type]
        )

    async def finalize_invoice(self, invoice_id: str, *, key: str, account: str) -> dict[str, Any]:
        return _plain(
            await self.v1.invoices.finalize_invoice_async(
                invoice_id,
                {},
                self.options(key, account),  # type: ignore[arg-type]
            )
        )

    async def void_invoice(self, invoice_id: str, *, key: str, account: str) -> dict[str, Any]:
        return _plain(
            await self.v1.invoices.void_invoice_async(
                invoice_id,
                {},
                self.options(key, account),  # type: ignore[arg-type]
            )
        )


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


@lru_cache(maxsize=4)
def _gateway(api_key: str, api_base: str, timeout: float) -> StripeGateway:
    return StripeGateway(api_key, api_base, timeout)


def gateway(settings: Settings) -> StripeGateway:
    """The gateway for these settings, or `stripe-not-configured` when there is no key."""
    if not settings.stripe_configured or settings.stripe_api_key is None:
        raise errors.StripeNotConfigured()
    return _gateway(
        settings.stripe_api_key.get_secret_value(),
        settings.stripe_api_base,
        settings.stripe_timeout_seconds,
    )


def describe(exc: Exception) -> str:
    """A failure as a user may read it: Stripe's message, never our key or a request dump."""
    if isinstance(exc, stripe.StripeError):
        return f"{type(exc).__name__}: {exc.user_message or 'Stripe refused the request'}"[:500]
    return f"{type(exc).__name__}"
