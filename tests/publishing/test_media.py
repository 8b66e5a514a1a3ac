"""Media downloads and scheduling-time inspection, against the real media server on loopback
(devtools/media_server.py): what the worker keeps, what it refuses and how it says so."""

from __future__ import annotations

import gc
import os
import socket
import tracemalloc
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from devtools.media_server import MediaServer
from infra.settings import Settings
from publishing.media import MB, MediaError, MediaLimits, download, inspect

LOOPBACK = ["127.0.0.0/8"]
LIMITS = MediaLimits()


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def fetch(http, server: MediaServer, path: str, kind: str, dest: Path, **options):
    return await download(
        http,
        server.url + path,
        kind=kind,
        dest=dest,
        limits=options.pop("limits", LIMITS),
        allowed_networks=options.pop("allowed_networks", LOOPBACK),
        **options,
    )


async def refused(http, server: MediaServer, path: str, kind: str, dest: Path, **options):
    with pytest.raises(MediaError) as caught:
        await fetch(http, server, path, kind, dest, **options)
    assert dest.name not in os.listdir(dest.parent), "a refused download leaves no file behind"
    return caught.value


# --- what is kept ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind", "content_type"),
    [
        ("/image.png?w=1080&h=1350", "image", "image/png"),
        ("/image.jpg?w=1080&h=1350", "image", "image/jpeg"),
        ("/image.webp?w=1080&h=1350", "image", "image/webp"),
        ("/image.gif?w=1080&h=1350", "image", "image/gif"),
        ("/image.gif?w=1080&h=1350", "gif", "image/gif"),
    ],
)
async def test_an_image_is_saved_with_its_type_size_and_dimensions(
    http, media_server, tmp_path, path, kind, content_type
):
    dest = tmp_path / "media"
    media = await fetch(http, media_server, path, kind, dest, alt_text="Un croissant doré")
    assert (media.kind, media.content_type, media.width, media.height, media.duration) == (
        kind,
        content_type,
        1080,
        1350,
        None,
    )
    assert media.path == dest and media.size == dest.stat().st_size > 0
    assert media.alt_text == "Un croissant doré"
    # Connectors read it back in chunks.
    assert b"".join(media.chunks(1000)) == dest.read_bytes()


@pytest.mark.parametrize(
    ("path", "content_type", "width", "height", "duration"),
    [
        ("/video.mp4?w=1080&h=1920&seconds=30", "video/mp4", 1080, 1920, 30.0),
        ("/video.mov?w=1920&h=1080&seconds=12.5", "video/quicktime", 1920, 1080, 12.5),
        # A phone's portrait video: stored 1920x1080 with a quarter-turn matrix, shown upright.
        ("/video.mp4?w=1080&h=1920&seconds=8&rotate=90", "video/mp4", 1080, 1920, 8.0),
        # moov after mdat: read from the whole file all the same.
        ("/video.mp4?w=720&h=720&seconds=61&moov=end", "video/mp4", 720, 720, 61.0),
    ],
)
async def test_a_video_is_saved_with_its_duration_and_dimensions(
    http, media_server, tmp_path, path, content_type, width, height, duration
):
    media = await fetch(http, media_server, path + "&bytes=300000", "video", tmp_path / "v")
    assert (media.content_type, media.width, media.height, media.duration) == (
        content_type,
        width,
        height,
        duration,
    )
    assert media.size == 300_000 == media.path.stat().st_size


async def test_a_pdf_document_is_saved(http, media_server, tmp_path):
    media = await fetch(http, media_server, "/document.pdf", "document", tmp_path / "d")
    assert media.content_type == "application/pdf"
    assert media.path.read_bytes().startswith(b"%PDF-")


async def test_a_50_mb_video_is_streamed_to_disk_not_held_in_memory(http, media_server, tmp_path):
    size = 50 * MB
    gc.collect()
    tracemalloc.start()
    try:
        media = await fetch(
            http,
            media_server,
            f"/video.mp4?w=1080&h=1920&seconds=45&bytes={size}",
            "video",
            tmp_path / "big",
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert media.size == size == media.path.stat().st_size
    assert media.duration == 45.0
    # Everything Python allocated meanwhile (the server thread included) stayed a few buffers.
    assert peak < 3 * MB, f"peak {peak / MB:.1f} MB while downloading {size / MB:.0f} MB"


# --- what is refused -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind", "words"),
    [
        ("/text.txt", "image", "is served as text/plain; an image must be JPEG, PNG, GIF or WebP"),
        ("/image.png", "video", "is served as image/png; a video must be MP4 or MOV"),
        ("/image.png", "gif", "is served as image/png; a GIF must be GIF"),
        ("/video.mp4?type=application/octet-stream", "video", "is served as application/"),
        ("/document.pdf", "image", "is served as application/pdf"),
        ("/image.png?type=", "image", "is served as an unknown type"),
    ],
)
async def test_a_type_the_kind_does_not_take_is_refused(
    http, media_server, tmp_path, path, kind, words
):
    error = await refused(http, media_server, path, kind, tmp_path / "m")
    assert error.code == "wrong_type" and not error.retryable
    assert words in error.message
    assert f"{media_server.url}/" in error.message  # the person sees which file


@pytest.mark.parametrize(
    ("path", "kind", "words"),
    [
        # A server announcing an image type for a file that is none.
        ("/text.txt?type=image/png", "image", "is not a readable JPEG, PNG, GIF or WebP image"),
        ("/text.txt?type=video/mp4", "video", "is not a readable MP4 or MOV video"),
        ("/text.txt?type=application/pdf", "document", "is not a readable PDF document"),
        # A GIF named as a GIF but that is a PNG inside.
        ("/image.png?type=image/gif", "gif", "is a PNG; a GIF must be GIF"),
    ],
)
async def test_a_file_that_is_not_what_it_claims_is_refused(
    http, media_server, tmp_path, path, kind, words
):
    error = await refused(http, media_server, path, kind, tmp_path / "m")
    assert words in error.message


async def test_an_image_over_the_limit_is_refused_by_its_content_length(
    http, media_server, tmp_path
):
    error = await refused(http, media_server, "/image.png?bytes=12582912", "image", tmp_path / "i")
    assert error.code == "too_large" and not error.retryable
    assert error.message == (
        f"The image at {media_server.url}/image.png is 12 MB; the limit is 8 MB."
    )


async def test_a_body_with_no_length_is_cut_off_at_the_limit(http, media_server, tmp_path):
    limits = MediaLimits(max_video_bytes=2 * MB)
    error = await refused(
        http,
        media_server,
        "/video.mp4?bytes=6000000&chunked=1",
        "video",
        tmp_path / "v",
        limits=limits,
    )
    assert error.code == "too_large"
    assert "is larger than 2 MB; the limit is 2 MB" in error.message


async def test_the_limit_follows_the_kind(http, media_server, tmp_path):
    limits = MediaLimits(max_image_bytes=100_000, max_video_bytes=400_000)
    path = "/video.mp4?bytes=300000"
    assert (await fetch(http, media_server, path, "video", tmp_path / "v", limits=limits)).size
    error = await refused(
        http, media_server, "/image.png?bytes=300000", "image", tmp_path / "i", limits=limits
    )
    assert "is 293 KB; the limit is 97.7 KB" in error.message


async def test_a_content_length_larger_than_the_body_is_an_incomplete_download(
    http, media_server, tmp_path
):
    error = await refused(
        http, media_server, "/video.mp4?bytes=300000&length=900000", "video", tmp_path / "v"
    )
    assert (error.code, error.retryable) == ("incomplete", True)
    assert "was cut short; try again later" in error.message


@pytest.mark.parametrize(
    ("path", "kind", "words"),
    [
        ("/video.mp4?bytes=3000000&length=200000", "video", "is incomplete or damaged"),
        ("/image.png?w=400&h=400&length=100", "image", "is not a readable"),
    ],
)
async def test_a_content_length_smaller_than_the_body_leaves_a_broken_file_that_is_refused(
    http, media_server, tmp_path, path, kind, words
):
    # The server then sends far more than announced: only the announced bytes are taken.
    error = await refused(http, media_server, path, kind, tmp_path / "m")
    assert error.code == "unreadable"
    assert words in error.message


@pytest.mark.parametrize(
    ("status", "retryable", "words"),
    [
        (404, False, "is not there (HTTP 404); check its address"),
        (410, False, "is not there (HTTP 410)"),
        (403, False, "is not public (HTTP 403)"),
        (400, False, "could not be downloaded (HTTP 400)."),
        (429, True, "could not be downloaded (HTTP 429); try again later"),
        (503, True, "could not be downloaded (HTTP 503); try again later"),
    ],
)
async def test_an_error_answer_is_refused_and_says_whether_to_retry(
    http, media_server, tmp_path, status, retryable, words
):
    error = await refused(
        http, media_server, f"/image.png?status={status}", "image", tmp_path / "i"
    )
    assert (error.code, error.retryable) == ("http_error", retryable)
    assert words in error.message


async def test_a_server_that_does_not_answer_is_unreachable_and_retryable(http, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(MediaError) as caught:
        await download(
            http,
            f"http://127.0.0.1:{port}/image.png",
            kind="image",
            dest=tmp_path / "i",
            limits=LIMITS,
            allowed_networks=LOOPBACK,
        )
    assert (caught.value.code, caught.value.retryable) == ("unreachable", True)


async def test_messages_never_show_the_query_of_a_url(http, media_server, tmp_path):
    error = await refused(
        http,
        media_server,
        "/image.png?bytes=12582912&X-Amz-Signature=s3cr3t",
        "image",
        tmp_path / "i",
    )
    assert "s3cr3t" not in error.message and "?" not in error.message


# --- redirects and the SSRF guard ------------------------------------------------------------


async def test_up_to_three_redirects_are_followed(http, media_server, tmp_path):
    media_server.reset()
    media = await fetch(
        http,
        media_server,
        "/redirect?times=3&to=/image.jpg%3Fw%3D640%26h%3D800",
        "image",
        tmp_path / "i",
    )
    assert (media.content_type, media.width, media.height) == ("image/jpeg", 640, 800)
    assert [r.path.partition("?")[0] for r in media_server.requests] == [
        "/redirect",
        "/redirect",
        "/redirect",
        "/image.jpg",
    ]


async def test_a_redirect_to_an_address_with_a_fragment_is_followed(http, media_server, tmp_path):
    media = await fetch(
        http, media_server, "/redirect?to=/image.png%23top", "image", tmp_path / "i"
    )
    assert media.content_type == "image/png"


async def test_a_fourth_redirect_is_refused(http, media_server, tmp_path):
    error = await refused(
        http, media_server, "/redirect?times=4&to=/image.png", "image", tmp_path / "i"
    )
    assert error.code == "too_many_redirects"
    assert "redirects more than 3 times; use its final address" in error.message


async def test_a_private_address_is_refused_unless_allowed_and_never_contacted(
    http, media_server, tmp_path
):
    media_server.reset()
    error = await refused(
        http, media_server, "/image.png", "image", tmp_path / "i", allowed_networks=[]
    )
    assert error.code == "unsafe_url" and not error.retryable
    assert "private, loopback, link-local or reserved address" in error.message
    assert media_server.requests == []


@pytest.mark.parametrize("target", ["http://10.1.2.3/image.png", "http://169.254.169.254/latest"])
async def test_a_redirect_to_a_private_address_is_refused(http, media_server, tmp_path, target):
    # Loopback is allowed (the media server), the redirect's target is not.
    error = await refused(http, media_server, f"/redirect?to={target}", "image", tmp_path / "i")
    assert error.code == "unsafe_url"
    assert target.split("/")[2] in error.message


async def test_a_redirect_is_checked_against_the_allowed_networks_one_hop_at_a_time(
    http, media_server, tmp_path
):
    port = media_server.url.rsplit(":", 1)[1]
    error = await refused(
        http,
        media_server,
        f"/redirect?to=http://127.0.0.2:{port}/image.png",
        "image",
        tmp_path / "i",
        allowed_networks=["127.0.0.1/32"],
    )
    assert error.code == "unsafe_url" and "127.0.0.2" in error.message


async def test_the_request_goes_to_the_checked_address_with_the_name_in_host(
    http, media_server, tmp_path
):
    media_server.reset()
    await fetch(http, media_server, "/image.png", "image", tmp_path / "i")
    (request,) = media_server.requests
    assert request.headers["host"] == media_server.url.removeprefix("http://")
    assert request.headers["accept-encoding"] == "identity"


# --- inspect ---------------------------------------------------------------------------------


async def test_inspect_reads_a_range_and_learns_size_dimensions_and_duration(http, media_server):
    media_server.reset()
    url = f"{media_server.url}/video.mp4?w=1080&h=1920&seconds=14&bytes=20000000"
    info = await inspect(http, url, "video", LIMITS, LOOPBACK, alt_text="Bande-annonce")
    assert (info.url, info.kind, info.content_type, info.size) == (
        url,
        "video",
        "video/mp4",
        20_000_000,
    )
    assert (info.width, info.height, info.duration) == (1080, 1920, 14.0)
    assert info.alt_text == "Bande-annonce"
    (request,) = media_server.requests
    assert request.headers["range"] == f"bytes=0-{LIMITS.probe_bytes - 1}"
    assert info.as_dict()["duration"] == 14.0


async def test_inspect_of_a_server_without_ranges_reads_only_the_start(http, media_server):
    url = f"{media_server.url}/video.mp4?w=720&h=1280&seconds=20&bytes=40000000&ranges=0"
    gc.collect()
    tracemalloc.start()
    try:
        info = await inspect(http, url, "video", LIMITS, LOOPBACK)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.size, info.width, info.height, info.duration) == (40_000_000, 720, 1280, 20.0)
    assert peak < LIMITS.probe_bytes * 3, "the head read, not the 40 MB file"


async def test_inspect_leaves_unknown_what_lies_beyond_what_it_read(http, media_server):
    url = f"{media_server.url}/video.mp4?seconds=20&bytes=20000000&moov=end"
    info = await inspect(http, url, "video", LIMITS, LOOPBACK)
    assert (info.size, info.width, info.height, info.duration) == (20_000_000, None, None, None)


async def test_inspect_of_an_image(http, media_server):
    info = await inspect(
        http, f"{media_server.url}/image.webp?w=1080&h=566", "image", LIMITS, LOOPBACK
    )
    assert (info.content_type, info.width, info.height) == ("image/webp", 1080, 566)
    assert info.size is not None and info.size > 0


async def test_inspect_of_a_chunked_answer_counts_what_it_read(http, media_server):
    url = f"{media_server.url}/image.png?w=300&h=300&chunked=1&ranges=0"
    info = await inspect(http, url, "image", LIMITS, LOOPBACK)
    assert info.size is not None and 0 < info.size < 10_000 and info.width == 300


@pytest.mark.parametrize(
    ("path", "kind", "code", "words"),
    [
        # The size is known from Content-Range's total, without reading the file.
        ("/video.mp4?bytes=30000000", "video", "too_large", "is 28.6 MB; the limit is 20 MB"),
        ("/video.mp4?bytes=30000000&ranges=0", "video", "too_large", "is 28.6 MB"),
        ("/text.txt", "image", "wrong_type", "is served as text/plain"),
        ("/text.txt?type=image/jpeg", "image", "unreadable", "is not a readable"),
        ("/text.txt?type=video/mp4", "video", "unreadable", "is not a readable MP4 or MOV"),
        ("/redirect?times=4&to=/image.png", "image", "too_many_redirects", "more than 3"),
        ("/image.png?status=404", "image", "http_error", "is not there"),
    ],
)
async def test_inspect_refuses_what_download_would(http, media_server, path, kind, code, words):
    limits = MediaLimits(max_video_bytes=20 * MB)
    with pytest.raises(MediaError) as caught:
        await inspect(http, media_server.url + path, kind, limits, LOOPBACK)
    assert caught.value.code == code
    assert words in caught.value.message


async def test_inspect_of_a_chunked_answer_holds_its_length_against_the_limit(http, media_server):
    limits = MediaLimits(max_image_bytes=2000)
    url = f"{media_server.url}/image.png?w=300&h=300&bytes=3000&chunked=1&ranges=0"
    with pytest.raises(MediaError) as caught:
        await inspect(http, url, "image", limits, LOOPBACK)
    assert caught.value.code == "too_large"
    assert "is 2.9 KB; the limit is 2 KB" in caught.value.message


async def test_inspect_refuses_a_private_address_unless_allowed(http, media_server):
    with pytest.raises(MediaError) as caught:
        await inspect(http, f"{media_server.url}/image.png", "image", LIMITS, [])
    assert caught.value.code == "unsafe_url"


# --- settings --------------------------------------------------------------------------------


@pytest.fixture
def no_environment(monkeypatch):
    for name in (
        "PUBLISHING_MEDIA_MAX_IMAGE_BYTES",
        "PUBLISHING_MEDIA_MAX_VIDEO_BYTES",
        "PUBLISHING_MEDIA_ALLOWED_NETWORKS",
    ):
        monkeypatch.delenv(name, raising=False)


def _settings(**values):
    return Settings(
        database_url="postgresql://app@db.example/passerelle",
        redis_url="redis://redis.example:6379/0",
        jwt_private_keys='{"keys": []}',
        **values,
    )


def test_limits_and_networks_come_from_the_settings(no_environment):
    settings = _settings(
        publishing_media_max_image_bytes=1000,
        publishing_media_max_video_bytes=5000,
        publishing_media_allowed_networks="10.0.0.0/8, 192.168.0.0/16",
    )
    limits = MediaLimits.from_settings(settings)
    assert (limits.max_bytes("image"), limits.max_bytes("gif")) == (1000, 1000)
    assert (limits.max_bytes("video"), limits.max_bytes("document")) == (5000, 5000)
    assert settings.publishing_media_allowed_networks == ["10.0.0.0/8", "192.168.0.0/16"]


def test_defaults_are_8_mb_images_1_gb_videos_and_public_addresses_only(no_environment):
    settings = _settings()
    limits = MediaLimits.from_settings(settings)
    assert (limits.max_image_bytes, limits.max_video_bytes) == (8 * MB, 1024 * MB)
    assert settings.publishing_media_allowed_networks == []


def test_a_malformed_network_stops_start_up(no_environment):
    with pytest.raises(ValidationError, match="publishing_media_allowed_networks"):
        _settings(publishing_media_allowed_networks="10.0.0.0/33")
