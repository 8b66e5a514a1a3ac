"""The limits on guessing passwords, shared by every door that checks one (the API's login
and sign-up, the portal's sign-in)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from infra.errors import RateLimited
from infra.ratelimit import FailureLimits, RateLimiter, address_key
from infra.settings import Settings, parse_rate
from tenants import errors


def login_limits(settings: Settings) -> FailureLimits:
    return FailureLimits(
        per_pair=parse_rate(settings.login_rate_limit_per_pair),
        per_address=parse_rate(settings.login_rate_limit_per_address),
        per_subject=parse_rate(settings.login_rate_limit_per_email),
        max_delay_seconds=settings.login_slowdown_max_seconds,
    )


@asynccontextmanager
async def password_check(
    limiter: RateLimiter, settings: Settings, *, email: str, host: str | None
) -> AsyncIterator[None]:
    """Admit a password check for `email` from this client, then count it only if the password
    was wrong. Refused before the e-mail is looked up or any hash runs, so a refusal costs
    nothing and says nothing about whether the account exists."""
    admission = await limiter.admit_check(
        "login",
        subject=email.lower(),
        address=address_key(host),
        limits=login_limits(settings),
    )
    if not admission.allowed:
        raise RateLimited(
            admission.retry_after,
            f"Too many failed login attempts; try again in {admission.retry_after} seconds.",
        )
    try:
        yield
    except (errors.InvalidCredentials, errors.EmailTaken):
        await admission.failed()
        raise
    except errors.TenantRequired:
        await admission.succeeded()  # the password was right; only the agency is missing
        raise
    except Exception:
        await admission.not_checked()
        raise
    await admission.succeeded()
