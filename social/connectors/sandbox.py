"""The demo platform: no network at all, deterministic and plausible figures.

Everything is a function of (external id, day) through a hash: followers grow slowly with a
little noise, impressions follow the week (weekends quieter), reach is 55-80 % of impressions,
engagements 2-6 %, a few posts on weekdays, some video views. The OAuth dance is the API's
own redirect: a code ``sandbox-<anything>`` is exchanged for the account
``sandbox-<sha256(code)[:10]>`` whose access token ``sandbox-at-<external id>`` names it.
Its inbox is a trickle of comments, replies, mentions and messages computed the same way
(`sandbox_inbox`), with a crisis-like burst of negative comments once a day.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from typing import Any

from infra.clock import utcnow
from social.connectors import sandbox_inbox
from social.connectors.base import days, utc_today
from social.connectors.types import (
    DailyMetrics,
    InboundItem,
    InboxKind,
    ItemRef,
    Moderation,
    Platform,
    PostDraft,
    PostFigures,
    Profile,
    PublishedPost,
    Remember,
    SentReply,
    TokenInvalid,
    TokenSet,
)

ACCESS_PREFIX = "sandbox-at-"
REFRESH_PREFIX = "sandbox-rt-"
CODE_PREFIX = "sandbox-"
TOKEN_LIFETIME = timedelta(days=30)
EPOCH = date(2024, 1, 1)
_WEEKDAY = (1.0, 1.08, 1.05, 1.0, 0.92, 0.68, 0.6)
_FIRST = ("Maison", "Atelier", "Studio", "Café", "Librairie", "Brasserie", "Jardin", "Galerie")
_SECOND = ("Lumière", "Horizon", "Papillon", "Azur", "Olivier", "Coquelicot", "Mistral", "Sable")


def _u(*parts: object) -> float:
    raw = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(raw[:8], "big") / 2**64


def external_id_for_code(code: str) -> str:
    return CODE_PREFIX + hashlib.sha256(code.encode()).hexdigest()[:10]


def followers(external_id: str, day: date) -> int:
    size = 300 + 40_000 * _u(external_id, "size") ** 2
    growth = 0.5 + size * (0.0005 + 0.002 * _u(external_id, "growth"))
    noise = (_u(external_id, day, "noise") - 0.5) * 2 * (1 + size * 0.0005)
    return max(0, round(size + growth * (day - EPOCH).days + noise))


def figures(external_id: str, day: date) -> dict[str, int | None]:
    """The sandbox account's figures for one day, every metric present."""
    total = followers(external_id, day)
    weekday = day.weekday()
    impressions = round(
        (60 + total * 0.35) * _WEEKDAY[weekday] * (0.75 + 0.5 * _u(external_id, day, "imp"))
    )
    posts = int(_u(external_id, day, "posts") * (3.0 if weekday < 5 else 1.6))
    return {
        "followers": total,
        "follower_change": total - followers(external_id, day - timedelta(days=1)),
        "impressions": impressions,
        "reach": round(impressions * (0.55 + 0.25 * _u(external_id, day, "reach"))),
        "engagements": round(impressions * (0.02 + 0.04 * _u(external_id, day, "eng"))),
        "posts_published": posts,
        "video_views": round(impressions * (0.08 + 0.22 * _u(external_id, day, "views"))),
    }


class SandboxConnector:
    platform = Platform.sandbox
    can_reply_privately = True
    moderations = frozenset(Moderation)
    first_read = timedelta(hours=24)
    """How far back the inbox's first read of an account looks: a day of the made-up trickle
    (its daily burst included) shows a live inbox; the networks' connectors read two days."""
    authorize_url = ""
    token_url = ""
    scopes: tuple[str, ...] = ()
    scope_separator = " "
    backfill_days = 90
    refresh_uses_access_token = False

    def __init__(self, **_: object) -> None:
        """Takes (and ignores) what the network connectors take: http, budget, settings."""
        self.extra_authorize_params: dict[str, str] = {}
        self.extra_token_params: dict[str, str] = {}

    @staticmethod
    def _tokens(external_id: str) -> TokenSet:
        return TokenSet(
            access_token=ACCESS_PREFIX + external_id,
            refresh_token=REFRESH_PREFIX + external_id,
            expires_at=utcnow() + TOKEN_LIFETIME,
            scope="sandbox",
        )

    async def exchange(self, code: str) -> TokenSet:
        if not code.startswith(CODE_PREFIX) or len(code) <= len(CODE_PREFIX):
            raise TokenInvalid("sandbox: not a sandbox authorization code")
        return self._tokens(external_id_for_code(code))

    async def refresh(self, refresh_token: str) -> TokenSet:
        if not refresh_token.startswith(REFRESH_PREFIX + CODE_PREFIX):
            raise TokenInvalid("sandbox: not a sandbox refresh token")
        return self._tokens(refresh_token.removeprefix(REFRESH_PREFIX))

    async def profile(self, token: TokenSet, external_id: str | None) -> Profile:
        """The account of the token, with an invented name when it is being connected
        (`external_id` None). Asked about a known account (a sync), it gives no name: a sandbox
        account has no name of its own on a platform, so it keeps the one it was given (the
        demo names its accounts after their brand)."""
        if external_id is not None:
            return Profile(
                external_id=external_id,
                handle=None,
                display_name=None,
                followers=followers(external_id, utc_today()),
            )
        if not token.access_token.startswith(ACCESS_PREFIX + CODE_PREFIX):
            raise TokenInvalid("sandbox: not a sandbox access token")
        external_id = token.access_token.removeprefix(ACCESS_PREFIX)
        first = _FIRST[int(_u(external_id, "first") * len(_FIRST))]
        second = _SECOND[int(_u(external_id, "second") * len(_SECOND))]
        suffix = external_id.removeprefix(CODE_PREFIX)[:4]
        return Profile(
            external_id=external_id,
            handle=f"{first}{second}_{suffix}".lower().replace("é", "e").replace("è", "e"),
            display_name=f"{first} {second}",
            followers=followers(external_id, utc_today()),
        )

    async def daily_metrics(
        self, token: TokenSet, external_id: str, since: date, until: date
    ) -> DailyMetrics:
        result = DailyMetrics()
        for day in days(since, min(until, utc_today())):
            result.days[day] = figures(external_id, day)
        return result

    # --- publishing: a local feed (the account's published publications), nothing leaves

    @staticmethod
    def _own(token: TokenSet, external_id: str) -> None:
        if token.access_token != ACCESS_PREFIX + external_id:
            raise TokenInvalid("sandbox: the token is not this account's")

    async def prepare(
        self, token: TokenSet, external_id: str, draft: PostDraft, state: dict[str, Any]
    ) -> dict[str, Any]:
        self._own(token, external_id)
        return {**state, "media": [m.kind for m in draft.media]}

    async def create(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        remember: Remember,
    ) -> PublishedPost:
        self._own(token, external_id)
        now = utcnow()
        post_id = (
            "sbx-"
            + hashlib.sha256(f"{external_id}|{draft.text}|{now.isoformat()}".encode()).hexdigest()[
                :16
            ]
        )
        return PublishedPost(
            external_id=post_id,
            permalink=f"https://sandbox.passerelle.invalid/{external_id}/posts/{post_id}",
            published_at=now,
        )

    async def find(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        since: datetime,
    ) -> PublishedPost | None:
        """The sandbox answers every create call at once: nothing is ever left unknown."""
        return None

    def resumable(self, state: dict[str, Any]) -> bool:
        return False

    async def post_figures(self, token: TokenSet, external_id: str, post_id: str) -> PostFigures:
        size = followers(external_id, utc_today())
        impressions = round((50 + size * 0.4) * (0.5 + _u(post_id, "imp")))
        return PostFigures(
            impressions=impressions,
            reach=round(impressions * (0.6 + 0.3 * _u(post_id, "reach"))),
            engagements=round(impressions * (0.02 + 0.05 * _u(post_id, "eng"))),
            video_views=round(impressions * 0.3 * _u(post_id, "views")),
        )

    # --- the inbox: a trickle computed from (account, minute), see sandbox_inbox; nothing kept

    async def fetch_items(
        self, token: TokenSet, external_id: str, since: datetime | None
    ) -> list[InboundItem]:
        """What reached the account from `since` (included) to now, oldest first; never more
        than a week back, and the last day when `since` is None."""
        self._own(token, external_id)
        now = utcnow()
        start = now - sandbox_inbox.DEFAULT_WINDOW if since is None else since
        start = max(start, now - sandbox_inbox.MAX_WINDOW)
        return sandbox_inbox.items_between(external_id, start, now)

    async def reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, *, private: bool
    ) -> SentReply:
        """Answered at once. The id follows from what was answered and how, so a test (or a
        replayed job) can tell which reply is which without the sandbox remembering it."""
        self._own(token, external_id)
        reply_id = (
            "sbx-out-"
            + hashlib.sha256(
                f"{external_id}|{item.external_id}|{private}|{text}".encode()
            ).hexdigest()[:16]
        )
        where = "messages" if private or item.kind is InboxKind.message else "comments"
        return SentReply(
            external_id=reply_id,
            permalink=f"https://sandbox.passerelle.invalid/{external_id}/{where}/{reply_id}",
            created_at=utcnow(),
        )

    async def find_reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, since: datetime
    ) -> SentReply | None:
        """The sandbox answers every reply at once, so no outcome is ever unknown; and it
        remembers none, so it has nothing to find."""
        self._own(token, external_id)
        return None

    async def moderate(
        self, token: TokenSet, external_id: str, item: ItemRef, action: Moderation
    ) -> None:
        """Hide, unhide and delete are all accepted on every kind (the demo shows each)."""
        self._own(token, external_id)
