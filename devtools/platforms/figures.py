"""Deterministic figures of the simulated accounts: followers, audiences, posts and their
metrics, the same for a given (platform, external id, day) in every run and every process."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

PLATFORMS = (
    "facebook_page",
    "instagram_business",
    "linkedin_organization",
    "x",
    "youtube",
    "tiktok",
)
METRICS = (
    "followers",
    "follower_change",
    "impressions",
    "reach",
    "engagements",
    "posts_published",
    "video_views",
)
HISTORY_DAYS = 730
"""How far back an account has posts (listings stop there)."""
SEED_ANCHOR = date(2025, 1, 1)
POST_RATE = {
    "facebook_page": 1.5,
    "instagram_business": 1.0,
    "linkedin_organization": 0.8,
    "x": 3.0,
    "youtube": 0.4,
    "tiktok": 1.0,
}
WEEKDAY = (1.0, 1.05, 1.05, 1.0, 0.95, 0.7, 0.6)


def hash_of(*parts: object) -> int:
    raw = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


def unit_of(*parts: object) -> float:
    """A uniform number in [0, 1) fixed by its parts."""
    return hash_of(*parts) / 2**64


def digit_id(n: int, *parts: object) -> str:
    value = hash_of(*parts)
    return str(1 + value % 9) + str(value).rjust(20, "0")[-(n - 1) :]


def b64id(n: int, *parts: object) -> str:
    raw = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")[:n]


def midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def today_utc() -> date:
    return datetime.now(UTC).date()


class Post:
    """One published post; its figures are drawn when read (listings often need only dates)."""

    __slots__ = ("_account", "_base", "_day", "_i", "created_at", "id")

    def __init__(
        self, account: Account, day: date, i: int, created_at: datetime, base: float
    ) -> None:
        self._account, self._day, self._i, self._base = account, day, i, base
        self.created_at = created_at
        self.id = account._post_id(day, i)

    def _draw(self, what: int) -> float:
        return self._account._r(self._day, what, self._i)

    @property
    def impressions(self) -> int:
        return round(self._base * (0.3 + 1.4 * self._draw(_POST_IMP)))

    @property
    def likes(self) -> int:
        return round(self.impressions * (0.005 + 0.04 * self._draw(_LIKES)))

    @property
    def comments(self) -> int:
        return round(self.likes * (0.05 + 0.25 * self._draw(_COMMENTS)))

    @property
    def shares(self) -> int:
        return round(self.likes * (0.02 + 0.2 * self._draw(_SHARES)))

    @property
    def quotes(self) -> int:
        return round(self.shares * 0.4 * self._draw(_QUOTES))

    @property
    def views(self) -> int:
        return round(self.impressions * (0.4 + 0.8 * self._draw(_POST_VIEWS)))


@dataclass(frozen=True)
class Audience:
    impressions: int
    reach: int
    engagements: int
    video_views: int


_MASK = 2**64 - 1


def _mix(x: int) -> int:
    """splitmix64: cheap, well-spread, deterministic (figures are drawn by the thousand)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


# What a draw is for, so that two figures of one day differ.
(_JITTER, _LOST, _IMP, _REACH, _ENG, _VIEWS, _POSTS, _AT, _POST_IMP, _LIKES, _SHARES,
 _COMMENTS, _QUOTES, _POST_VIEWS, _PAID, _ID) = range(16)  # fmt: skip


@dataclass
class Account:
    platform: str
    external_id: str
    handle: str
    name: str
    followers: int
    """The follower count on `anchor`."""
    anchor: date

    def __post_init__(self) -> None:
        self._seed = hash_of(self.platform, self.external_id)

    def _key(self, *parts: object) -> float:
        return unit_of(self.platform, self.external_id, *parts)

    def _r(self, day: date, what: int, i: int = 0) -> float:
        """A uniform number in [0, 1) for (account, day, what, i): splitmix64 inlined, the
        simulator draws thousands of these a request."""
        x = (self._seed + (day.toordinal() << 16) + (what << 8) + i + 0x9E3779B97F4A7C15) & _MASK
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
        return (x ^ (x >> 31)) / 18446744073709551616

    def _jitter(self, day: date) -> int:
        amplitude = 1 + self.followers * 0.0004
        return round((self._r(day, _JITTER) - 0.5) * 2 * amplitude)

    def total(self, day: date) -> int:
        growth = 0.3 + self.followers * (0.0004 + 0.002 * (self._seed % 1000) / 1000)
        n = (day - self.anchor).days
        return max(
            0, self.followers + round(growth * n) + self._jitter(day) - self._jitter(self.anchor)
        )

    def change(self, day: date) -> int:
        return self.total(day) - self.total(day - timedelta(days=1))

    def gained_lost(self, day: date) -> tuple[int, int]:
        change = self.change(day)
        lost = max(round(self._r(day, _LOST) * (1 + self.total(day) * 0.0008)), -change)
        return change + lost, lost

    def audience(self, day: date) -> Audience:
        base = 40 + self.total(day) * 0.3
        impressions = round(base * WEEKDAY[day.weekday()] * (0.7 + 0.6 * self._r(day, _IMP)))
        return Audience(
            impressions=impressions,
            reach=round(impressions * (0.5 + 0.3 * self._r(day, _REACH))),
            engagements=round(impressions * (0.01 + 0.05 * self._r(day, _ENG))),
            video_views=round(impressions * (0.05 + 0.25 * self._r(day, _VIEWS))),
        )

    def paid_gain(self, day: date) -> int:
        return round(max(self.change(day), 0) * 0.1 * self._r(day, _PAID))

    def engagement_parts(self, day: date) -> dict[str, int]:
        """The day's engagements split the way LinkedIn and YouTube count them."""
        total = self.audience(day).engagements
        likes, comments, shares = round(total * 0.5), round(total * 0.15), round(total * 0.1)
        return {
            "likes": likes,
            "comments": comments,
            "shares": shares,
            "clicks": total - likes - comments - shares,
        }

    def posts(self, day: date, now: datetime | None = None) -> list[Post]:
        """The posts published that day (none in the future), newest first."""
        if day < self.anchor - timedelta(days=HISTORY_DAYS):
            return []
        rate = POST_RATE[self.platform] * WEEKDAY[day.weekday()]
        count = int(rate * 2 * self._r(day, _POSTS) + 0.5)
        if not count:
            return []
        base = 20 + self.total(day) * 0.15
        limit = now or datetime.now(UTC)
        start = midnight_utc(day)
        posts = []
        for i in range(count):
            created = start + timedelta(seconds=int(86_400 * self._r(day, _AT, i)))
            if created <= limit:
                posts.append(Post(self, day, i, created, base))
        posts.sort(key=lambda p: (p.created_at, p.id), reverse=True)
        return posts

    def _post_id(self, day: date, i: int) -> str:
        raw = _mix(self._seed + (day.toordinal() << 16) + (_ID << 8) + i)
        digits = str(raw).rjust(20, "0")
        if self.platform == "facebook_page":
            return f"{self.external_id}_{1 + raw % 9}{digits[-15:]}"
        if self.platform == "instagram_business":
            return "179" + digits[-14:]
        if self.platform == "linkedin_organization":
            return f"urn:li:share:7{digits[-18:]}"
        if self.platform == "youtube":
            return base64.urlsafe_b64encode(raw.to_bytes(8, "big")).decode().rstrip("=")
        return f"1{digits[-18:]}"

    def posts_desc(
        self, newest: datetime, oldest: datetime | None = None, now: datetime | None = None
    ) -> Iterator[Post]:
        """Posts created in [oldest, newest), newest first."""
        floor = self.anchor - timedelta(days=HISTORY_DAYS)
        if oldest is not None:
            floor = max(floor, oldest.astimezone(UTC).date())
        day = min(newest.astimezone(UTC).date(), today_utc())
        while day >= floor:
            for post in self.posts(day, now):
                if post.created_at < newest and (oldest is None or post.created_at >= oldest):
                    yield post
            day -= timedelta(days=1)
