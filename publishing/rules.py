"""What each platform accepts, checked when a post is scheduled (pure: no I/O).

`problems(platform, text, media, account_status)` lists every reason the platform would refuse
the post, each naming its platform and field, so a 422 can show them all at once. The rules are
one table, a row per platform (`RULES`), each limit with the page it comes from. Where a
platform's documentation and its behaviour differ, or a page gives no number, the row says so;
where a value is only a recommendation (Instagram's 9:16 for reels), it is not enforced, since
the platform takes the post all the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from publishing.media import MB, MediaInfo, size_text
from social.connectors.types import Platform
from workflows.checks import PLATFORM_LIMITS, platform_length

GB = 1024 * MB
MINUTE = 60.0
HOUR = 3600.0
# A ratio is accepted when within this fraction of a bound: 1080x1350 is 4:5 exactly, and
# platforms round the same way.
RATIO_TOLERANCE = 0.01

JPEG, PNG, GIF, WEBP = "image/jpeg", "image/png", "image/gif", "image/webp"
MP4, MOV, PDF = "video/mp4", "video/quicktime", "application/pdf"
_TYPE_NAMES = {JPEG: "JPEG", PNG: "PNG", GIF: "GIF", WEBP: "WebP", MP4: "MP4", MOV: "MOV"}
_TYPE_NAMES[PDF] = "PDF"
_NOUNS = {"image": "image", "gif": "GIF", "video": "video", "document": "document"}
_PLURALS = {"image": "images", "gif": "GIFs", "video": "videos", "document": "documents"}
RECONNECT_STATUSES = frozenset({"needs_reauth", "disconnected"})


@dataclass(frozen=True)
class Problem:
    platform: str
    field: str
    """text, title, media or account."""
    message: str
    media_index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class KindRule:
    """What a platform takes of one kind of media (image, gif, video, document)."""

    types: tuple[str, ...]
    max_count: int
    max_bytes: int | None = None
    seconds: tuple[float, float] | None = None
    """Shortest and longest video, in seconds."""
    ratio: tuple[float, float] | None = None
    """Narrowest and widest width:height."""
    sides: tuple[int, int] | None = None
    """Smallest and largest width or height, in pixels."""
    max_pixels: int | None = None
    alt_text: bool = False
    """The platform takes a description for this kind (sent with it)."""
    label: str = ""
    """How the platform calls it: "reels", "feed images"..."""


@dataclass(frozen=True)
class PlatformRules:
    name: str
    variant: str
    """The key of the item's text for this platform (workflows' variants)."""
    text_limit: int
    kinds: Mapping[str, KindRule]
    count: Callable[[str], int] = len
    min_media: int = 0
    max_media: int = 0
    """With mixing allowed, the most media of any kinds together."""
    mixed: bool = False
    """Kinds may be mixed in one post."""
    text_or_media: bool = True
    """A post with neither text nor media is refused (the others need media anyway)."""
    alt_text_limit: int | None = None
    hashtag_limit: int | None = None
    title_limit: int | None = None
    no_angle_brackets: bool = False
    several: PlatformRules | None = None
    """Other rules for a post of two media or more (Instagram's carousel)."""
    how: str = ""
    """What it takes, for messages: "up to 4 images, a GIF or a video"."""


def _x_length(text: str) -> int:
    return platform_length("x", text)


def _utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --- the table --------------------------------------------------------------------------------

# Instagram, Content Publishing (developers.facebook.com/docs/instagram-platform/
# content-publishing, and the IG User Media reference): a post has media, no text-only post.
# Images: JPEG only, 8 MB, aspect 4:5 to 1.91:1. Reels: MP4/MOV, 3 s to 15 min, 1 GB (older
# versions of the page said 300 MB), aspect 0.01:1 to 10:1 (9:16 recommended, not required).
# Carousels: 2 to 10 images and videos, mixed. Caption: 2,200 characters, 30 hashtags.
# `alt_text` (image containers, 2025): no separate cap documented; the caption's 2,200 is used.
_INSTAGRAM_IMAGE = KindRule(
    (JPEG,), 10, 8 * MB, ratio=(4 / 5, 1.91), alt_text=True, label="feed images"
)
_INSTAGRAM_VIDEO = KindRule(
    (MP4, MOV), 10, 1 * GB, seconds=(3, 15 * MINUTE), ratio=(0.01, 10), label="reels"
)
_INSTAGRAM_CAROUSEL = PlatformRules(
    "Instagram",
    "instagram",
    PLATFORM_LIMITS["instagram"],
    {"image": _INSTAGRAM_IMAGE, "video": _INSTAGRAM_VIDEO},
    min_media=2,
    max_media=10,
    mixed=True,
    alt_text_limit=2200,
    hashtag_limit=30,
    how="one image, one video (a reel) or a carousel of 2 to 10 images and videos",
)

RULES: dict[str, PlatformRules] = {
    Platform.instagram_business: PlatformRules(
        "Instagram",
        "instagram",
        PLATFORM_LIMITS["instagram"],
        {"image": _INSTAGRAM_IMAGE, "video": _INSTAGRAM_VIDEO},
        min_media=1,
        max_media=10,
        mixed=True,
        alt_text_limit=2200,
        hashtag_limit=30,
        several=_INSTAGRAM_CAROUSEL,
        how=_INSTAGRAM_CAROUSEL.how,
    ),
    # Facebook Pages (Graph API /{page-id}/feed, /photos, /videos): text up to 63,206
    # characters; photos JPEG, PNG, GIF (and BMP, TIFF), 4 MB; several photos attach to one
    # post (up to 10, as Pages publish them); one video, MP4/MOV, up to 240 min and 10 GB;
    # photos and a video not together. Alt text: `alt_text_custom` on photos, no cap documented,
    # so none is enforced.
    Platform.facebook_page: PlatformRules(
        "Facebook",
        "facebook",
        PLATFORM_LIMITS["facebook"],
        {
            "image": KindRule((JPEG, PNG, GIF), 10, 4 * MB, alt_text=True, label="photos"),
            "gif": KindRule((GIF,), 10, 4 * MB, alt_text=True, label="photos"),
            "video": KindRule((MP4, MOV), 1, 10 * GB, seconds=(0, 240 * MINUTE)),
        },
        max_media=10,
        how="up to 10 photos or one video",
    ),
    # LinkedIn (Posts API, Images API, Videos API, Documents API, Marketing 2024+): commentary
    # up to 3,000 characters; images JPEG, PNG, GIF (up to 36,152,320 pixels), 1 to 20 in a
    # post (multiImage from 2); one video, MP4, 75 KB to 500 MB, 3 s to 30 min, aspect 1:2.4 to
    # 2.4:1; or one document, PDF, 100 MB. No mixing. altText: up to 4,086 characters.
    Platform.linkedin_organization: PlatformRules(
        "LinkedIn",
        "linkedin",
        PLATFORM_LIMITS["linkedin"],
        {
            "image": KindRule((JPEG, PNG, GIF), 20, max_pixels=36_152_320, alt_text=True),
            "gif": KindRule((GIF,), 1, max_pixels=36_152_320, alt_text=True),
            "video": KindRule((MP4,), 1, 500 * MB, seconds=(3, 30 * MINUTE), ratio=(1 / 2.4, 2.4)),
            "document": KindRule((PDF,), 1, 100 * MB),
        },
        max_media=20,
        alt_text_limit=4086,
        how="up to 20 images, one video or one PDF document",
    ),
    # X (API v2 POST /2/tweets, media upload, "media best practices"): 280 weighted characters,
    # each link 23; up to 4 images (JPEG, PNG, WebP, GIF; 5 MB), or 1 animated GIF (15 MB), or
    # 1 video (MP4/MOV, 512 MB, 0.5 s to 140 s, aspect 1:3 to 3:1); no mixing. Alt text
    # (media metadata): up to 1,000 characters, images and GIFs.
    Platform.x: PlatformRules(
        "X",
        "x",
        PLATFORM_LIMITS["x"],
        {
            "image": KindRule((JPEG, PNG, WEBP, GIF), 4, 5 * MB, alt_text=True),
            "gif": KindRule((GIF,), 1, 15 * MB, alt_text=True),
            "video": KindRule((MP4, MOV), 1, 512 * MB, seconds=(0.5, 140), ratio=(1 / 3, 3)),
        },
        count=_x_length,
        max_media=4,
        alt_text_limit=1000,
        how="up to 4 images, one GIF or one video",
    ),
    # YouTube Data API videos.insert: one video (MP4/MOV among many), up to 12 hours and
    # 256 GB; title up to 100 characters, description up to 5,000 bytes, neither with < or >.
    Platform.youtube: PlatformRules(
        "YouTube",
        "youtube",
        PLATFORM_LIMITS["youtube"],
        {"video": KindRule((MP4, MOV), 1, 256 * GB, seconds=(0, 12 * HOUR))},
        count=_utf8_bytes,
        min_media=1,
        max_media=1,
        title_limit=100,
        no_angle_brackets=True,
        how="exactly one video",
    ),
    # TikTok Content Posting API, direct post (and its media transfer guide): one video,
    # MP4/MOV (WebM too), up to 4 GB, 3 s to 10 min (the creator's max_video_post_duration_sec
    # may be lower), 360 to 4,096 pixels a side; caption up to 2,200 UTF-16 code units.
    Platform.tiktok: PlatformRules(
        "TikTok",
        "tiktok",
        PLATFORM_LIMITS["tiktok"],
        {"video": KindRule((MP4, MOV), 1, 4 * GB, seconds=(3, 10 * MINUTE), sides=(360, 4096))},
        count=_utf16_units,
        min_media=1,
        max_media=1,
        how="exactly one video",
    ),
    # Sandbox: our demo platform, standing for Instagram and Facebook in the demo; it takes
    # what either would, generously.
    Platform.sandbox: PlatformRules(
        "Sandbox",
        "sandbox",
        PLATFORM_LIMITS["facebook"],
        {
            "image": KindRule((JPEG, PNG, GIF, WEBP), 10, alt_text=True),
            "gif": KindRule((GIF,), 10, alt_text=True),
            "video": KindRule((MP4, MOV), 10),
        },
        max_media=10,
        mixed=True,
        how="up to 10 images and videos",
    ),
}


def rules_for(platform: str) -> PlatformRules:
    try:
        return RULES[platform]
    except KeyError:
        raise ValueError(f"no publishing rules for platform {platform!r}") from None


def text_for(platform: str, variants: Mapping[str, str]) -> str | None:
    """The item's text for `platform`: its own variant (instagram_business reads "instagram").
    The sandbox, which stands in the demo for Instagram and Facebook, falls back to the first
    variant. None when there is none."""
    variant = rules_for(platform).variant
    if variant in variants:
        return variants[variant]
    if platform == Platform.sandbox and variants:
        return next(iter(variants.values()))
    return None


# --- the checks ------------------------------------------------------------------------------


def problems(
    platform: str,
    text: str | None,
    media: Sequence[MediaInfo],
    account_status: str,
    *,
    title: str | None = None,
) -> list[Problem]:
    """Every reason `platform` would refuse this post: account, text, title, then media in
    order. `text` None: the item has no text for this platform at all (see `text_for`)."""
    rules = rules_for(platform)
    if len(media) >= 2 and rules.several is not None:
        rules = rules.several
    found: list[Problem] = []

    def add(field_name: str, message: str, index: int | None = None) -> None:
        found.append(Problem(platform, field_name, message, index))

    if account_status in RECONNECT_STATUSES:
        add(
            "account",
            f"The {rules.name} account is no longer connected; reconnect the account "
            "before publishing.",
        )
    _check_text(rules, text, bool(media), add)
    if title is not None and rules.title_limit is not None:
        _check_title(rules, title, add)
    _check_media(rules, media, add)
    return found


Add = Callable[..., None]


def _check_text(rules: PlatformRules, text: str | None, has_media: bool, add: Add) -> None:
    if text is None:
        add(
            "text",
            f'This item has no "{rules.variant}" text for {rules.name}; add one (it may be '
            "empty to publish without text).",
        )
        return
    if rules.text_or_media and not has_media and not text.strip():
        add("text", f"A post on {rules.name} needs text or media; this one has neither.")
    length = rules.count(text)
    if length > rules.text_limit:
        unit = "bytes" if rules.count is _utf8_bytes else "characters"
        add(
            "text",
            f"Too long for {rules.name}: {length} {unit}, limit {rules.text_limit} "
            f"({length - rules.text_limit} over).",
        )
    if rules.hashtag_limit is not None:
        hashtags = len(re.findall(r"(?<![\w#])#\w", text))
        if hashtags > rules.hashtag_limit:
            add(
                "text",
                f"{rules.name} takes at most {rules.hashtag_limit} hashtags; this text has "
                f"{hashtags}.",
            )
    if rules.no_angle_brackets and ("<" in text or ">" in text):
        add("text", f"{rules.name} refuses < and > in a description; remove them.")


def _check_title(rules: PlatformRules, title: str, add: Add) -> None:
    assert rules.title_limit is not None
    if len(title) > rules.title_limit:
        add(
            "title",
            f"The title is too long for {rules.name}: {len(title)} characters, limit "
            f"{rules.title_limit}.",
        )
    if rules.no_angle_brackets and ("<" in title or ">" in title):
        add("title", f"{rules.name} refuses < and > in a title; remove them.")


def _check_media(rules: PlatformRules, media: Sequence[MediaInfo], add: Add) -> None:
    if len(media) < rules.min_media:
        needed = "at least one" if rules.min_media == 1 else f"at least {rules.min_media}"
        add("media", f"{rules.name} needs {needed} media: it takes {rules.how}.")
    kinds = list(dict.fromkeys(m.kind for m in media))
    refused = [k for k in kinds if k not in rules.kinds]
    for kind in refused:
        indexes = ", ".join(str(i + 1) for i, m in enumerate(media) if m.kind == kind)
        add(
            "media",
            f"{rules.name} does not take {_PLURALS.get(kind, kind)} (media {indexes}); "
            f"it takes {rules.how}.",
        )
    accepted = [k for k in kinds if k in rules.kinds]
    if not rules.mixed and len(accepted) > 1:
        add(
            "media",
            f"{rules.name} takes one kind of media per post ({rules.how}); this one mixes "
            f"{' and '.join(_PLURALS[k] for k in accepted)}.",
        )
    elif rules.mixed:
        if rules.max_media and len(media) > rules.max_media:
            add(
                "media",
                f"{rules.name} takes at most {rules.max_media} media in a post; this one has "
                f"{len(media)}.",
            )
    else:
        for kind in accepted:
            count = sum(1 for m in media if m.kind == kind)
            most = rules.kinds[kind].max_count
            if count > most:
                what = _PLURALS[kind] if most > 1 else _NOUNS[kind]
                add(
                    "media",
                    f"{rules.name} takes at most {most} {what} in a post; this one has {count}.",
                )
    for index, item in enumerate(media):
        rule = rules.kinds.get(item.kind)
        if rule is not None:
            _check_one(rules, rule, index, item, add)


def _check_one(rules: PlatformRules, rule: KindRule, index: int, item: MediaInfo, add: Add) -> None:
    plain = f"{_NOUNS[item.kind]} {index + 1}"
    noun = plain[0].upper() + plain[1:]
    label = rule.label or _PLURALS[item.kind]

    def media_problem(message: str) -> None:
        add("media", message, index)

    if item.content_type not in rule.types:
        names = _type_names(rule.types)
        shown = _TYPE_NAMES.get(item.content_type, item.content_type)
        media_problem(f"{noun} is {shown}; {rules.name} takes {label} in {names}.")
    if rule.max_bytes is not None and item.size is not None and item.size > rule.max_bytes:
        media_problem(
            f"{noun} is {size_text(item.size)}; {rules.name} takes {label} up to "
            f"{size_text(rule.max_bytes)}."
        )
    if rule.seconds is not None and item.duration is not None:
        low, high = rule.seconds
        if not low <= item.duration <= high:
            span = f"of {_duration(low)} to " if low else "of up to "
            media_problem(
                f"{noun} lasts {_duration(item.duration)}; {rules.name} takes {label} "
                f"{span}{_duration(high)}."
            )
    if item.width and item.height:
        _check_shape(rules, rule, noun, label, item.width, item.height, media_problem)
    if rule.alt_text and rules.alt_text_limit is not None:
        length = len(item.alt_text)
        if length > rules.alt_text_limit:
            media_problem(
                f"The alt text of {plain} has {length} characters; {rules.name} takes "
                f"{rules.alt_text_limit} at most."
            )


def _check_shape(
    rules: PlatformRules,
    rule: KindRule,
    noun: str,
    label: str,
    width: int,
    height: int,
    media_problem: Callable[[str], None],
) -> None:
    if rule.ratio is not None:
        low, high = rule.ratio
        ratio = width / height
        if ratio < low * (1 - RATIO_TOLERANCE) or ratio > high * (1 + RATIO_TOLERANCE):
            media_problem(
                f"{noun} is {width}×{height} ({_ratio(ratio)}); {rules.name} takes {label} "
                f"from {_ratio(low)} to {_ratio(high)}."
            )
    if rule.max_pixels is not None and width * height > rule.max_pixels:
        media_problem(
            f"{noun} is {width}×{height}, {width * height:,} pixels; {rules.name} takes {label} "
            f"of {rule.max_pixels:,} pixels at most."
        )
    if rule.sides is not None:
        smallest, largest = rule.sides
        if min(width, height) < smallest or max(width, height) > largest:
            media_problem(
                f"{noun} is {width}×{height}; {rules.name} takes {label} of {smallest} to "
                f"{largest} pixels a side."
            )


def _type_names(types: Sequence[str]) -> str:
    names = [_TYPE_NAMES.get(t, t) for t in types]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _ratio(value: float) -> str:
    """4:5 and 9:16 read better than 0.8:1; others as "1.91:1"."""
    for name, known in (("4:5", 4 / 5), ("9:16", 9 / 16), ("16:9", 16 / 9), ("1:1", 1.0)):
        if abs(value - known) < 0.001:
            return name
    if value < 1:
        return f"1:{1 / value:.3g}"
    return f"{value:.3g}:1"


def _duration(seconds: float) -> str:
    """90 -> "1 min 30 s", 14400 -> "4 h", 0.5 -> "0.5 s"."""
    hours, rest = divmod(seconds, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    parts = [f"{hours:g} h"] if hours else []
    parts += [f"{minutes:g} min"] if minutes else []
    parts += [f"{round(rest, 3):g} s"] if rest or not parts else []
    return " ".join(parts)
