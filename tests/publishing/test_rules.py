"""Scheduling-time rules per platform: one row per rule and platform, each naming the one
problem it expects (or none, for posts the platform takes)."""

from __future__ import annotations

import json

import pytest

from publishing.media import MB, MediaInfo
from publishing.rules import RULES, Problem, problems, text_for
from social.connectors.types import Platform

GB = 1024 * MB


def image(
    content_type: str = "image/jpeg",
    *,
    size: int | None = MB,
    width: int = 1080,
    height: int = 1080,
    alt: str = "Un croissant doré",
    kind: str = "image",
) -> MediaInfo:
    return MediaInfo("https://cdn.example/i", kind, content_type, size, width, height, None, alt)


def gif(**values) -> MediaInfo:
    return image("image/gif", kind="gif", **values)


def video(
    seconds: float | None = 30,
    *,
    content_type: str = "video/mp4",
    size: int | None = 50 * MB,
    width: int | None = 1080,
    height: int | None = 1920,
    alt: str = "",
) -> MediaInfo:
    return MediaInfo(
        "https://cdn.example/v", "video", content_type, size, width, height, seconds, alt
    )


def pdf(size: int = 2 * MB) -> MediaInfo:
    return MediaInfo("https://cdn.example/d.pdf", "document", "application/pdf", size)


IG, FB, LI = "instagram_business", "facebook_page", "linkedin_organization"
X, YT, TT, SB = "x", "youtube", "tiktok", "sandbox"
TEXT = "Nouveau pain au levain ce samedi!"
LINK = " https://boulangerie.example/levain-du-samedi-matin"

# (id, platform, text, media, account status, expected: [(field, media_index, words)])
ROWS: list[tuple[str, str, str | None, list[MediaInfo], str, list[tuple[str, int | None, str]]]]
ROWS = [
    # --- posts each platform takes, at the edges of its limits
    ("ig-image-4:5", IG, TEXT, [image(width=1080, height=1350)], "connected", []),
    ("ig-image-1.91:1", IG, TEXT, [image(width=1080, height=566)], "connected", []),
    ("ig-reel", IG, "", [video(900)], "connected", []),
    ("ig-carousel-mixed", IG, TEXT, [image(), video(3), image()], "connected", []),
    ("ig-caption-2200", IG, "a" * 2200, [image()], "connected", []),
    ("ig-30-hashtags", IG, " ".join(f"#pain{i}" for i in range(30)), [image()], "connected", []),
    ("fb-text-only", FB, TEXT, [], "connected", []),
    ("fb-10-photos", FB, TEXT, [image("image/png")] * 10, "connected", []),
    ("fb-video-240min", FB, TEXT, [video(240 * 60, width=1920, height=1080)], "connected", []),
    ("fb-long-alt-not-capped", FB, TEXT, [image(alt="a" * 5000)], "connected", []),
    ("li-text-3000", LI, "a" * 3000, [], "connected", []),
    ("li-20-images", LI, TEXT, [image("image/png")] * 20, "connected", []),
    ("li-video-30min", LI, TEXT, [video(30 * 60, width=1920, height=1080)], "connected", []),
    ("li-pdf", LI, TEXT, [pdf()], "connected", []),
    ("li-alt-4086", LI, TEXT, [image(alt="a" * 4086)], "connected", []),
    ("x-280", X, "a" * 280, [], "connected", []),
    ("x-link-counts-23", X, "a" * 256 + LINK, [], "connected", []),
    ("x-4-images", X, "", [image("image/webp")] * 4, "connected", []),
    ("x-1-gif", X, TEXT, [gif(size=15 * MB)], "connected", []),
    ("x-video-140s", X, TEXT, [video(140)], "connected", []),
    ("x-alt-1000", X, TEXT, [image(alt="a" * 1000)], "connected", []),
    ("x-video-alt-not-taken", X, TEXT, [video(alt="a" * 5000)], "connected", []),
    ("yt-video-12h", YT, "", [video(12 * 3600, content_type="video/quicktime")], "connected", []),
    ("yt-description-5000-bytes", YT, "é" * 2500, [video()], "connected", []),
    ("tt-video-10min", TT, TEXT, [video(600)], "connected", []),
    ("tt-unknown-duration", TT, TEXT, [video(None, size=None)], "connected", []),
    ("sb-mixed", SB, TEXT, [image(), video(), gif()], "connected", []),
    ("account-in-error-still-publishes", X, TEXT, [], "error", []),
    ("paused-account-still-publishes", FB, TEXT, [], "paused", []),
    # --- text
    ("ig-caption-2201", IG, "a" * 2201, [image()], "connected",
     [("text", None, "Too long for Instagram: 2201 characters, limit 2200 (1 over)")]),
    ("fb-text-63207", FB, "a" * 63207, [], "connected",
     [("text", None, "Too long for Facebook: 63207 characters, limit 63206")]),
    ("li-text-3001", LI, "a" * 3001, [], "connected",
     [("text", None, "Too long for LinkedIn: 3001 characters, limit 3000")]),
    ("x-281", X, "a" * 281, [], "connected",
     [("text", None, "Too long for X: 281 characters, limit 280 (1 over)")]),
    ("x-link-over", X, "a" * 257 + LINK, [], "connected",
     [("text", None, "Too long for X: 281 characters")]),
    ("yt-description-5001-bytes", YT, "é" * 2500 + "a", [video()], "connected",
     [("text", None, "Too long for YouTube: 5001 bytes, limit 5000")]),
    ("tt-caption-utf16", TT, "😀" * 1101, [video()], "connected",
     [("text", None, "Too long for TikTok: 2202 characters, limit 2200")]),
    ("sb-text-63207", SB, "a" * 63207, [], "connected", [("text", None, "Too long for Sandbox")]),
    ("ig-31-hashtags", IG, " ".join(f"#pain{i}" for i in range(31)), [image()], "connected",
     [("text", None, "Instagram takes at most 30 hashtags; this text has 31")]),
    ("yt-angle-brackets", YT, "Voir <ici>", [video()], "connected",
     [("text", None, "YouTube refuses < and > in a description")]),
    ("x-no-variant", X, None, [image()], "connected",
     [("text", None, 'This item has no "x" text for X; add one')]),
    ("ig-no-variant", IG, None, [image()], "connected",
     [("text", None, 'This item has no "instagram" text for Instagram')]),
    ("fb-empty", FB, "  ", [], "connected",
     [("text", None, "A post on Facebook needs text or media; this one has neither")]),
    ("li-empty", LI, "", [], "connected", [("text", None, "A post on LinkedIn needs text")]),
    ("x-empty", X, "", [], "connected", [("text", None, "A post on X needs text or media")]),
    ("sb-empty", SB, "", [], "connected", [("text", None, "A post on Sandbox needs text")]),
    # --- media count
    ("ig-no-media", IG, TEXT, [], "connected",
     [("media", None, "Instagram needs at least one media: it takes one image, one video")]),
    ("ig-carousel-11", IG, TEXT, [image()] * 11, "connected",
     [("media", None, "Instagram takes at most 10 media in a post; this one has 11")]),
    ("fb-11-photos", FB, TEXT, [image()] * 11, "connected",
     [("media", None, "Facebook takes at most 10 images in a post; this one has 11")]),
    ("fb-2-videos", FB, TEXT, [video(), video()], "connected",
     [("media", None, "Facebook takes at most 1 video in a post; this one has 2")]),
    ("li-21-images", LI, TEXT, [image()] * 21, "connected",
     [("media", None, "LinkedIn takes at most 20 images in a post; this one has 21")]),
    ("li-2-videos", LI, TEXT, [video(), video()], "connected",
     [("media", None, "LinkedIn takes at most 1 video in a post")]),
    ("li-2-documents", LI, TEXT, [pdf(), pdf()], "connected",
     [("media", None, "LinkedIn takes at most 1 document in a post")]),
    ("x-5-images", X, TEXT, [image()] * 5, "connected",
     [("media", None, "X takes at most 4 images in a post; this one has 5")]),
    ("x-2-gifs", X, TEXT, [gif(), gif()], "connected",
     [("media", None, "X takes at most 1 GIF in a post; this one has 2")]),
    ("x-2-videos", X, TEXT, [video(), video()], "connected",
     [("media", None, "X takes at most 1 video in a post")]),
    ("yt-no-video", YT, TEXT, [], "connected",
     [("media", None, "YouTube needs at least one media: it takes exactly one video")]),
    ("yt-2-videos", YT, TEXT, [video(), video()], "connected",
     [("media", None, "YouTube takes at most 1 video in a post; this one has 2")]),
    ("tt-no-video", TT, TEXT, [], "connected",
     [("media", None, "TikTok needs at least one media: it takes exactly one video")]),
    ("tt-2-videos", TT, TEXT, [video(), video()], "connected",
     [("media", None, "TikTok takes at most 1 video in a post")]),
    ("sb-11-media", SB, TEXT, [image()] * 6 + [video()] * 5, "connected",
     [("media", None, "Sandbox takes at most 10 media in a post; this one has 11")]),
    # --- kinds a platform does not take
    ("ig-gif", IG, TEXT, [gif()], "connected",
     [("media", None, "Instagram does not take GIFs (media 1)")]),
    ("ig-document", IG, TEXT, [image(), pdf()], "connected",
     [("media", None, "Instagram does not take documents (media 2)")]),
    ("fb-document", FB, TEXT, [pdf()], "connected",
     [("media", None, "Facebook does not take documents (media 1)")]),
    ("x-document", X, TEXT, [pdf()], "connected", [("media", None, "X does not take documents")]),
    ("yt-image", YT, TEXT, [video(), image()], "connected",
     [("media", None, "YouTube does not take images (media 2); it takes exactly one video")]),
    ("tt-image", TT, TEXT, [image()], "connected",
     [("media", None, "TikTok does not take images (media 1); it takes exactly one video")]),
    ("sb-document", SB, TEXT, [pdf()], "connected",
     [("media", None, "Sandbox does not take documents")]),
    # --- mixing
    ("x-image-and-video", X, TEXT, [image(), video()], "connected",
     [("media", None, "X takes one kind of media per post (up to 4 images, one GIF or one "
       "video); this one mixes images and videos")]),
    ("x-image-and-gif", X, TEXT, [image(), gif()], "connected",
     [("media", None, "this one mixes images and GIFs")]),
    ("li-image-and-document", LI, TEXT, [image(), pdf()], "connected",
     [("media", None, "LinkedIn takes one kind of media per post")]),
    ("fb-photo-and-video", FB, TEXT, [video(), image()], "connected",
     [("media", None, "Facebook takes one kind of media per post (up to 10 photos or one "
       "video); this one mixes videos and images")]),
    # --- file types
    ("ig-png", IG, TEXT, [image("image/png")], "connected",
     [("media", 0, "Image 1 is PNG; Instagram takes feed images in JPEG")]),
    ("ig-carousel-webp", IG, TEXT, [image(), image("image/webp")], "connected",
     [("media", 1, "Image 2 is WebP; Instagram takes feed images in JPEG")]),
    ("fb-webp", FB, TEXT, [image("image/webp")], "connected",
     [("media", 0, "Image 1 is WebP; Facebook takes photos in JPEG, PNG or GIF")]),
    ("li-mov", LI, TEXT, [video(content_type="video/quicktime")], "connected",
     [("media", 0, "Video 1 is MOV; LinkedIn takes videos in MP4")]),
    ("li-webp", LI, TEXT, [image("image/webp")], "connected",
     [("media", 0, "Image 1 is WebP; LinkedIn takes images in JPEG, PNG or GIF")]),
    # --- sizes (unknown sizes are not held against a post)
    ("ig-image-9mb", IG, TEXT, [image(size=9 * MB)], "connected",
     [("media", 0, "Image 1 is 9 MB; Instagram takes feed images up to 8 MB")]),
    ("ig-reel-1.1gb", IG, TEXT, [video(size=1100 * MB)], "connected",
     [("media", 0, "Video 1 is 1.1 GB; Instagram takes reels up to 1 GB")]),
    ("fb-photo-5mb", FB, TEXT, [image(size=5 * MB)], "connected",
     [("media", 0, "Image 1 is 5 MB; Facebook takes photos up to 4 MB")]),
    ("fb-video-11gb", FB, TEXT, [video(size=11 * GB)], "connected",
     [("media", 0, "Video 1 is 11 GB; Facebook takes videos up to 10 GB")]),
    ("li-video-600mb", LI, TEXT, [video(size=600 * MB)], "connected",
     [("media", 0, "Video 1 is 600 MB; LinkedIn takes videos up to 500 MB")]),
    ("li-pdf-101mb", LI, TEXT, [pdf(size=101 * MB)], "connected",
     [("media", 0, "Document 1 is 101 MB; LinkedIn takes documents up to 100 MB")]),
    ("li-image-pixels", LI, TEXT, [image(width=7000, height=6000)], "connected",
     [("media", 0, "42,000,000 pixels; LinkedIn takes images of 36,152,320 pixels at most")]),
    ("x-image-6mb", X, TEXT, [image(size=6 * MB)], "connected",
     [("media", 0, "Image 1 is 6 MB; X takes images up to 5 MB")]),
    ("x-gif-16mb", X, TEXT, [gif(size=16 * MB)], "connected",
     [("media", 0, "GIF 1 is 16 MB; X takes GIFs up to 15 MB")]),
    ("x-video-600mb", X, TEXT, [video(size=600 * MB)], "connected",
     [("media", 0, "Video 1 is 600 MB; X takes videos up to 512 MB")]),
    ("tt-video-5gb", TT, TEXT, [video(size=5 * GB)], "connected",
     [("media", 0, "Video 1 is 5 GB; TikTok takes videos up to 4 GB")]),
    ("ig-size-unknown", IG, TEXT, [image(size=None)], "connected", []),
    # --- durations
    ("ig-reel-2s", IG, TEXT, [video(2)], "connected",
     [("media", 0, "Video 1 lasts 2 s; Instagram takes reels of 3 s to 15 min")]),
    ("ig-reel-901s", IG, TEXT, [video(901)], "connected",
     [("media", 0, "Video 1 lasts 15 min 1 s; Instagram takes reels of 3 s to 15 min")]),
    ("x-video-141s", X, TEXT, [video(141)], "connected",
     [("media", 0, "Video 1 lasts 2 min 21 s; X takes videos of 0.5 s to 2 min 20 s")]),
    ("x-video-0.4s", X, TEXT, [video(0.4)], "connected", [("media", 0, "Video 1 lasts 0.4 s")]),
    ("tt-video-2s", TT, TEXT, [video(2)], "connected",
     [("media", 0, "Video 1 lasts 2 s; TikTok takes videos of 3 s to 10 min")]),
    ("tt-video-601s", TT, TEXT, [video(601)], "connected",
     [("media", 0, "Video 1 lasts 10 min 1 s")]),
    ("yt-video-over-12h", YT, TEXT, [video(12 * 3600 + 1)], "connected",
     [("media", 0, "Video 1 lasts 12 h 1 s; YouTube takes videos of up to 12 h")]),
    ("li-video-2s", LI, TEXT, [video(2)], "connected",
     [("media", 0, "Video 1 lasts 2 s; LinkedIn takes videos of 3 s to 30 min")]),
    ("li-video-31min", LI, TEXT, [video(31 * 60)], "connected",
     [("media", 0, "Video 1 lasts 31 min; LinkedIn takes videos of 3 s to 30 min")]),
    ("fb-video-over-240min", FB, TEXT, [video(240 * 60 + 1)], "connected",
     [("media", 0, "Video 1 lasts 4 h 1 s; Facebook takes videos of up to 4 h")]),
    # --- shapes
    ("ig-image-9:16", IG, TEXT, [image(width=1080, height=1920)], "connected",
     [("media", 0, "Image 1 is 1080×1920 (9:16); Instagram takes feed images from 4:5 to "
       "1.91:1")]),
    ("ig-image-too-wide", IG, TEXT, [image(width=2000, height=1000)], "connected",
     [("media", 0, "Image 1 is 2000×1000 (2:1)")]),
    ("ig-carousel-image-shape", IG, TEXT, [image(), image(width=500, height=1000)], "connected",
     [("media", 1, "Image 2 is 500×1000 (1:2)")]),
    ("ig-reel-beyond-10:1", IG, TEXT, [video(width=2200, height=200)], "connected",
     [("media", 0, "Instagram takes reels from 1:100 to 10:1")]),
    ("x-video-1:4", X, TEXT, [video(width=400, height=1600)], "connected",
     [("media", 0, "Video 1 is 400×1600 (1:4); X takes videos from 1:3 to 3:1")]),
    ("li-video-1:3", LI, TEXT, [video(width=600, height=1800)], "connected",
     [("media", 0, "LinkedIn takes videos from 1:2.4 to 2.4:1")]),
    ("tt-video-too-small", TT, TEXT, [video(width=300, height=640)], "connected",
     [("media", 0, "Video 1 is 300×640; TikTok takes videos of 360 to 4096 pixels a side")]),
    ("tt-video-too-large", TT, TEXT, [video(width=2304, height=4100)], "connected",
     [("media", 0, "TikTok takes videos of 360 to 4096 pixels a side")]),
    ("tt-video-size-unknown", TT, TEXT, [video(width=None, height=None)], "connected", []),
    # --- alt text
    ("x-alt-1001", X, TEXT, [image(), image(alt="a" * 1001)], "connected",
     [("media", 1, "The alt text of image 2 has 1001 characters; X takes 1000 at most")]),
    ("x-gif-alt-1001", X, TEXT, [gif(alt="a" * 1001)], "connected",
     [("media", 0, "The alt text of GIF 1 has 1001 characters")]),
    ("li-alt-4087", LI, TEXT, [image(alt="a" * 4087)], "connected",
     [("media", 0, "The alt text of image 1 has 4087 characters; LinkedIn takes 4086 at most")]),
    ("ig-alt-2201", IG, TEXT, [image(alt="a" * 2201)], "connected",
     [("media", 0, "The alt text of image 1 has 2201 characters; Instagram takes 2200")]),
    # --- the account
    ("ig-needs-reauth", IG, TEXT, [image()], "needs_reauth",
     [("account", None, "The Instagram account is no longer connected; reconnect the account")]),
    ("x-disconnected", X, TEXT, [], "disconnected",
     [("account", None, "The X account is no longer connected; reconnect the account")]),
    ("yt-needs-reauth", YT, TEXT, [video()], "needs_reauth",
     [("account", None, "reconnect the account")]),
    ("tt-disconnected", TT, TEXT, [video()], "disconnected",
     [("account", None, "reconnect the account")]),
    ("li-needs-reauth", LI, TEXT, [], "needs_reauth", [("account", None, "reconnect the account")]),
    ("fb-needs-reauth", FB, TEXT, [], "needs_reauth", [("account", None, "reconnect the account")]),
    ("sb-needs-reauth", SB, TEXT, [], "needs_reauth", [("account", None, "reconnect the account")]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("platform", "text", "media", "status", "expected"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_rule(platform, text, media, status, expected):
    found = problems(platform, text, media, status)
    assert [(p.field, p.media_index) for p in found] == [(f, i) for f, i, _ in expected], found
    for problem, (_, _, words) in zip(found, expected, strict=True):
        assert problem.platform == platform
        assert words in problem.message, problem.message


def test_every_platform_has_rules_and_every_row_set_covers_it():
    assert set(RULES) == set(Platform)
    assert {row[1] for row in ROWS} == {p.value for p in Platform}


@pytest.mark.parametrize(
    ("title", "words"),
    [
        ("t" * 101, "The title is too long for YouTube: 101 characters, limit 100"),
        ("Pain <du jour>", "YouTube refuses < and > in a title"),
    ],
)
def test_a_youtube_title_is_checked(title, words):
    (problem,) = problems(YT, "", [video()], "connected", title=title)
    assert (problem.field, problem.platform) == ("title", YT)
    assert words in problem.message
    assert problems(YT, "", [video()], "connected", title="t" * 100) == []
    # Other platforms have no title to check.
    assert problems(FB, TEXT, [], "connected", title="t" * 500) == []


def test_every_problem_of_a_post_is_listed_at_once():
    found = problems(
        X,
        "a" * 300,
        [image(size=6 * MB, alt="a" * 1001), video(200)],
        "needs_reauth",
    )
    assert [p.field for p in found] == ["account", "text", "media", "media", "media", "media"]
    assert [p.media_index for p in found] == [None, None, None, 0, 0, 1]


def test_a_problem_serializes_to_json():
    (problem,) = problems(X, "a" * 281, [], "connected")
    assert json.loads(json.dumps(problem.as_dict())) == {
        "platform": "x",
        "field": "text",
        "message": "Too long for X: 281 characters, limit 280 (1 over).",
        "media_index": None,
    }
    assert Problem("x", "media", "m", 2).as_dict()["media_index"] == 2


@pytest.mark.parametrize(
    ("platform", "variant"),
    [
        (IG, "instagram"),
        (FB, "facebook"),
        (LI, "linkedin"),
        (X, "x"),
        (YT, "youtube"),
        (TT, "tiktok"),
        (SB, "sandbox"),
    ],
)
def test_each_platform_reads_its_own_text_variant(platform, variant):
    variants = {v: f"text for {v}" for v in ("instagram", "facebook", "linkedin", "x")}
    variants |= {"youtube": "yt", "tiktok": "tt", "sandbox": "sb"}
    assert text_for(platform, variants) == variants[variant]
    assert RULES[platform].variant == variant


def test_a_missing_variant_is_none_except_on_the_sandbox_which_takes_the_first():
    variants = {"instagram": "Pour Instagram", "facebook": "Pour Facebook"}
    assert text_for(X, variants) is None
    assert text_for(LI, variants) is None
    assert text_for(SB, variants) == "Pour Instagram"
    assert text_for(SB, {}) is None


def test_an_unknown_platform_is_a_programming_error():
    with pytest.raises(ValueError, match="threads"):
        problems("threads", TEXT, [], "connected")
