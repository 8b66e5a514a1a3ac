"""An agency's standing, from its subscription: pure, so every reader agrees on it.

A past-due agency keeps working through a grace period, then is suspended: it still reads
(and exports) everything but writes nothing until it pays. A canceled agency stays readable.
Suspension is computed at read time from when the agency fell past due, so it starts on time
with no job having to run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class Standing(StrEnum):
    active = "active"
    past_due = "past_due"
    suspended = "suspended"
    canceled = "canceled"


def standing_of(
    status: str, past_due_since: datetime | None, now: datetime, grace: timedelta
) -> Standing:
    if status == Standing.past_due:
        if past_due_since is not None and now >= past_due_since + grace:
            return Standing.suspended
        return Standing.past_due
    return Standing(status)


def grace_ends_at(past_due_since: datetime | None, grace: timedelta) -> datetime | None:
    return None if past_due_since is None else past_due_since + grace


def read_only(standing: Standing) -> bool:
    return standing in (Standing.suspended, Standing.canceled)


def tenant_status_for(stripe_status: str) -> Standing:
    """Stripe's subscription status, as the agency's standing before any grace period."""
    if stripe_status in ("active", "trialing"):
        return Standing.active
    if stripe_status in ("past_due", "unpaid"):
        return Standing.past_due
    if stripe_status in ("canceled", "incomplete_expired"):
        return Standing.canceled
    # incomplete / paused: the first payment or a pause is pending; keep what the agency had.
    return Standing.past_due if stripe_status == "paused" else Standing.active


_BANNERS = {
    Standing.past_due: "Your payment failed. Update your payment method before {until} to "
    "keep full access.",
    Standing.suspended: "Your subscription is suspended for non-payment: you can read and "
    "export, but not change anything until it is paid.",
    Standing.canceled: "Your subscription is canceled: your data stays readable and "
    "exportable. Subscribe again to make changes.",
}


def banner(
    status: str, past_due_since: datetime | None, now: datetime, grace: timedelta
) -> dict[str, object] | None:
    standing = standing_of(status, past_due_since, now, grace)
    if standing == Standing.active:
        return None
    until = grace_ends_at(past_due_since, grace) if standing == Standing.past_due else None
    return {
        "status": standing.value,
        "message": _BANNERS[standing].format(
            until=until.strftime("%Y-%m-%d %H:%M UTC") if until else ""
        ),
        "grace_ends_at": until,
        "read_only": read_only(standing),
    }
