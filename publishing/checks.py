"""The checks run when an item is scheduled: for every target account, what would stop the
post from going out (its platform's rules on text and media, the account's connection).

Media are inspected once per URL, whatever the number of accounts; the rules themselves are
pure (publishing.rules).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from infra.settings import Settings
from publishing.media import MediaError, MediaInfo, MediaLimits, inspect
from publishing.rules import problems
from social.models import AccountStatus, SocialAccount

__all__ = ["Checker", "Target", "checker"]


@dataclass(frozen=True)
class Target:
    account: SocialAccount
    text: str | None
    title: str
    media: Sequence[Mapping[str, Any]]


Problem = dict[str, Any]
Checker = Callable[[Sequence[Target]], Awaitable[list[Problem]]]
Inspect = Callable[[str, str, str], Awaitable[MediaInfo]]


def _paused(target: Target) -> list[Problem]:
    account = target.account
    if account.status != AccountStatus.paused:
        return []
    name = account.handle or account.display_name or account.external_id
    return [
        {
            "platform": account.platform,
            "field": "account",
            "message": f"The account {name} is paused: resume it to publish on it.",
            "media_index": None,
        }
    ]


async def run(targets: Sequence[Target], look: Inspect) -> list[Problem]:
    """Every problem of every target; a media file that cannot be read is one problem per
    file (not per account)."""
    wanted = {
        (str(m["url"]), str(m["type"]), str(m.get("alt_text") or ""))
        for t in targets
        for m in t.media
    }
    keys = sorted(wanted)
    answers = await asyncio.gather(*(look(*key) for key in keys), return_exceptions=True)
    infos: dict[tuple[str, str, str], MediaInfo] = {}
    found: list[Problem] = []
    for key, answer in zip(keys, answers, strict=True):
        if isinstance(answer, MediaError):
            index = next(i for t in targets for i, m in enumerate(t.media) if m["url"] == key[0])
            found.append(
                {
                    "platform": None,
                    "field": "media",
                    "message": answer.message,
                    "media_index": index,
                }
            )
        elif isinstance(answer, BaseException):
            raise answer
        else:
            infos[key] = answer
    if found:
        return found  # the platform rules need every file read
    for target in targets:
        media = [
            infos[(str(m["url"]), str(m["type"]), str(m.get("alt_text") or ""))]
            for m in target.media
        ]
        account = target.account
        found += _paused(target)
        found += [
            p.as_dict()
            for p in problems(
                account.platform, target.text, media, account.status, title=target.title
            )
        ]
    return found


def checker(http: httpx.AsyncClient, settings: Settings) -> Checker:
    """The checks scheduling runs, with this process's HTTP client and settings."""
    limits = MediaLimits.from_settings(settings)

    async def look(url: str, kind: str, alt_text: str) -> MediaInfo:
        return await inspect(
            http,
            url,
            kind,
            limits,
            settings.publishing_media_allowed_networks,
            alt_text=alt_text,
        )

    async def check(targets: Sequence[Target]) -> list[Problem]:
        return await run(targets, look)

    return check
