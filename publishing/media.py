"""The media of a post, fetched from the item's media URLs: checked at scheduling time
(`inspect`, a few MB at most) and downloaded to a file by the worker before publishing
(`download`, streamed to disk, never whole in memory).

Both go through the SSRF guard that partner webhooks use (infra.ssrf): each request is sent to
the address that was checked, with the name only in Host and SNI, and a redirect is followed
only after its target has been checked the same way, at most `MediaLimits.max_redirects` times.
A refusal is a MediaError whose message a person can act on; the URL it names loses its query
string, which often carries a signature (pre-signed storage links).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
from PIL import Image, UnidentifiedImageError

from infra import ssrf
from infra.ssrf import Network, UnsafeUrl
from social.connectors.types import MediaFile

KINDS = ("image", "video", "gif", "document")

ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    "image": ("image/jpeg", "image/png", "image/gif", "image/webp"),
    "gif": ("image/gif",),
    "video": ("video/mp4", "video/quicktime"),
    "document": ("application/pdf",),
}
_TYPE_NAMES = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WebP",
    "video/mp4": "MP4",
    "video/quicktime": "MOV",
    "application/pdf": "PDF",
}
_PILLOW_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
_NOUNS = {"image": "image", "gif": "GIF", "video": "video", "document": "document"}
# The first box of an ISO base media file (MP4) or a QuickTime movie.
_ISO_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_WRITE_BUFFER = 256 * 1024
MB = 1024 * 1024


@dataclass(frozen=True)
class MediaLimits:
    max_image_bytes: int = 8 * MB
    """Images and GIFs."""
    max_video_bytes: int = 1024 * MB
    """Videos and documents."""
    probe_bytes: int = 4 * MB
    """What `inspect` reads at most: enough for any image header and a fast-start MP4's moov."""
    max_redirects: int = 3

    @classmethod
    def from_settings(cls, settings: Any) -> MediaLimits:
        return cls(
            max_image_bytes=settings.publishing_media_max_image_bytes,
            max_video_bytes=settings.publishing_media_max_video_bytes,
        )

    def max_bytes(self, kind: str) -> int:
        return self.max_image_bytes if kind in ("image", "gif") else self.max_video_bytes


class MediaError(Exception):
    """A media file that cannot be used. `code`: unsafe_url, unreachable, timeout, incomplete,
    http_error, too_many_redirects, wrong_type, too_large, unreadable. `retryable`: the same
    request may well succeed later (a network failure, a 5xx or 429), as a 404 or a file too
    large will not."""

    def __init__(self, message: str, code: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable


@dataclass(frozen=True)
class MediaInfo:
    """What scheduling-time checks know of one media file without downloading it whole."""

    url: str
    kind: str
    content_type: str
    size: int | None
    """Bytes, when the server said (Content-Length, or the total of a Content-Range)."""
    width: int | None = None
    height: int | None = None
    """As displayed: a video stored sideways with a rotation matrix reports its upright size."""
    duration: float | None = None
    """Seconds, for a video whose moov box was within what was read."""
    alt_text: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_networks(networks: Iterable[str | Network]) -> list[Network]:
    return [n if not isinstance(n, str) else ssrf.parse_networks([n])[0] for n in networks or ()]


def shown(url: str) -> str:
    """The URL as messages show it: without its query (a signature, often) or fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the given URL"
    text = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return text if len(text) <= 120 else text[:117] + "..."


def size_text(size: int) -> str:
    if size >= 1024 * MB:
        value, unit = size / (1024 * MB), "GB"
    elif size >= MB:
        value, unit = size / MB, "MB"
    elif size >= 1024:
        value, unit = size / 1024, "KB"
    else:
        return f"{size} bytes"
    number = f"{value:.1f}".removesuffix(".0")
    return f"{number} {unit}"


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _check_kind(kind: str) -> None:
    if kind not in ALLOWED_TYPES:
        raise ValueError(f"unknown media kind {kind!r}")


def _type_list(kind: str) -> str:
    names = [_TYPE_NAMES[t] for t in ALLOWED_TYPES[kind]]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


# --- the guarded request --------------------------------------------------------------------


@asynccontextmanager
async def _get(
    http: httpx.AsyncClient,
    url: str,
    kind: str,
    limits: MediaLimits,
    networks: list[Network],
    headers: dict[str, str] | None = None,
) -> AsyncIterator[httpx.Response]:
    """The answer to GET `url`, after at most `limits.max_redirects` redirects, each hop's
    address checked; a 2xx answer, or MediaError. Its body is still to be read."""
    noun = _NOUNS[kind]
    current = url
    for _hop in range(limits.max_redirects + 1):
        try:
            target = await ssrf.resolve(current, networks)
        except UnsafeUrl as exc:
            raise MediaError(
                f"The {noun} at {shown(current)} cannot be downloaded: "
                f"{exc.message[:1].lower()}{exc.message[1:]}",
                "unsafe_url",
            ) from None
        request_headers = {
            **(headers or {}),
            "host": target.host_header,
            # Counted and stored as sent: a compressed answer could not be checked on its
            # Content-Length.
            "accept-encoding": "identity",
            "user-agent": "Passerelle-Media/1.0",
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            async with http.stream(
                "GET",
                target.pinned_url,
                headers=request_headers,
                extensions=extensions,
                follow_redirects=False,
            ) as response:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise MediaError(
                            f"The {noun} at {shown(url)} answered a redirect with no address.",
                            "http_error",
                        )
                    # A fragment is never sent; the guard refuses URLs that carry one.
                    current = urldefrag(urljoin(current, location)).url
                    continue
                _check_status(response, noun, url)
                yield response
                return
        except httpx.TimeoutException:
            raise MediaError(
                f"The {noun} at {shown(url)} did not answer in time; try again later.",
                "timeout",
                retryable=True,
            ) from None
        except httpx.RemoteProtocolError:
            raise MediaError(
                f"The download of the {noun} at {shown(url)} was cut short; try again later.",
                "incomplete",
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            raise MediaError(
                f"The {noun} at {shown(url)} could not be reached ({type(exc).__name__}).",
                "unreachable",
                retryable=True,
            ) from None
    raise MediaError(
        f"The {noun} at {shown(url)} redirects more than {limits.max_redirects} times; "
        "use its final address.",
        "too_many_redirects",
    )


def _check_status(response: httpx.Response, noun: str, url: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status in (404, 410):
        raise MediaError(
            f"The {noun} at {shown(url)} is not there (HTTP {status}); check its address.",
            "http_error",
        )
    if status in (401, 403):
        raise MediaError(
            f"The {noun} at {shown(url)} is not public (HTTP {status}); share it publicly or "
            "upload it elsewhere.",
            "http_error",
        )
    retryable = status == 429 or status >= 500
    raise MediaError(
        f"The {noun} at {shown(url)} could not be downloaded (HTTP {status})"
        + ("; try again later." if retryable else "."),
        "http_error",
        retryable=retryable,
    )


def _content_type(response: httpx.Response, kind: str, url: str) -> str:
    declared = str(response.headers.get("content-type", "")).split(";")[0].strip().lower()
    if declared not in ALLOWED_TYPES[kind]:
        noun = _NOUNS[kind]
        raise MediaError(
            f"The {noun} at {shown(url)} is served as {declared or 'an unknown type'}; "
            f"{_a(noun)} must be {_type_list(kind)}.",
            "wrong_type",
        )
    return declared


def _declared_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _too_large(kind: str, url: str, size: int | None, limit: int) -> MediaError:
    noun = _NOUNS[kind]
    what = f"is {size_text(size)}" if size is not None else f"is larger than {size_text(limit)}"
    return MediaError(
        f"The {noun} at {shown(url)} {what}; the limit is {size_text(limit)}.", "too_large"
    )


# --- download -------------------------------------------------------------------------------


async def download(
    http: httpx.AsyncClient,
    url: str,
    *,
    kind: str,
    dest: Path,
    limits: MediaLimits,
    allowed_networks: Iterable[str | Network],
    alt_text: str = "",
) -> MediaFile:
    """Streams the media at `url` into `dest` (created or replaced; removed on failure) and
    reads its type, size and, when it has them, width, height and duration from the file."""
    _check_kind(kind)
    limit = limits.max_bytes(kind)
    networks = parse_networks(allowed_networks)
    try:
        async with _get(http, url, kind, limits, networks) as response:
            _content_type(response, kind, url)
            declared = _declared_length(response)
            if declared is not None and declared > limit:
                raise _too_large(kind, url, declared, limit)
            received = await _stream_to(response, dest, kind, url, limit)
        content_type, width, height, duration = await asyncio.to_thread(
            _probe_file, dest, kind, url
        )
    except BaseException:
        _discard(dest)  # even when cancelled: a quick local call, no await
        raise
    return MediaFile(
        path=dest,
        kind=kind,
        content_type=content_type,
        size=received,
        alt_text=alt_text,
        width=width,
        height=height,
        duration=duration,
    )


def _discard(path: Path) -> None:
    with suppress(OSError):
        path.unlink(missing_ok=True)


async def _stream_to(response: httpx.Response, dest: Path, kind: str, url: str, limit: int) -> int:
    handle: IO[bytes] = await asyncio.to_thread(dest.open, "wb")
    try:
        received = 0
        pending = bytearray()
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > limit:
                raise _too_large(kind, url, None, limit)
            pending += chunk
            if len(pending) >= _WRITE_BUFFER:
                await asyncio.to_thread(handle.write, pending)
                pending = bytearray()
        if pending:
            await asyncio.to_thread(handle.write, pending)
        return received
    finally:
        await asyncio.to_thread(handle.close)


# --- inspect --------------------------------------------------------------------------------


async def inspect(
    http: httpx.AsyncClient,
    url: str,
    kind: str,
    limits: MediaLimits,
    allowed_networks: Iterable[str | Network],
    *,
    alt_text: str = "",
) -> MediaInfo:
    """Type, size and (when within the first `limits.probe_bytes`) dimensions and duration
    of the media at `url`, reading no more than that: a ranged GET when the server takes
    ranges, else the start of the whole answer."""
    _check_kind(kind)
    limit = limits.max_bytes(kind)
    networks = parse_networks(allowed_networks)
    wanted = {"range": f"bytes=0-{limits.probe_bytes - 1}"}
    async with _get(http, url, kind, limits, networks, wanted) as response:
        content_type = _content_type(response, kind, url)
        size = _total_size(response)
        if size is not None and size > limit:
            raise _too_large(kind, url, size, limit)
        head = bytearray()
        async for chunk in response.aiter_bytes():
            head += chunk
            if len(head) >= limits.probe_bytes:
                del head[limits.probe_bytes :]
                break
    if size is None and len(head) < limits.probe_bytes:
        size = len(head)  # the whole file was read: a chunked answer that ended
        if size > limit:
            raise _too_large(kind, url, size, limit)
    complete = size is not None and len(head) >= size
    found_type, width, height, duration = await asyncio.to_thread(
        _probe, io.BytesIO(head), kind, url, complete
    )
    return MediaInfo(
        url=url,
        kind=kind,
        content_type=found_type or content_type,
        size=size,
        width=width,
        height=height,
        duration=duration,
        alt_text=alt_text,
    )


def _total_size(response: httpx.Response) -> int | None:
    if response.status_code == 206:
        total = response.headers.get("content-range", "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    return _declared_length(response)


# --- reading the file -------------------------------------------------------------------------

Probe = tuple[str | None, int | None, int | None, float | None]


def _probe_file(
    path: Path, kind: str, url: str
) -> tuple[str, int | None, int | None, float | None]:
    with path.open("rb") as handle:
        content_type, width, height, duration = _probe(handle, kind, url, complete=True)
    assert content_type is not None
    return content_type, width, height, duration


def _unreadable(kind: str, url: str) -> MediaError:
    noun = _NOUNS[kind]
    return MediaError(
        f"The file at {shown(url)} is not a readable {_type_list(kind)} {noun}.", "unreadable"
    )


def _probe(source: IO[bytes], kind: str, url: str, complete: bool) -> Probe:
    """(content type, width, height, duration) read from the file's own bytes. `complete`:
    the whole file is there, so what cannot be read is broken, not merely cut off."""
    if kind in ("image", "gif"):
        return _probe_image(source, kind, url, complete)
    head = source.read(8)
    source.seek(0)
    if kind == "document":
        if not head.startswith(b"%PDF-"):
            raise _unreadable(kind, url)
        return "application/pdf", None, None, None
    if head[4:8] not in _ISO_BOXES:
        raise _unreadable(kind, url)
    if complete and not _boxes_fit(source):
        raise MediaError(
            f"The video at {shown(url)} is incomplete or damaged: the file ends before its "
            "last part; upload it again.",
            "unreadable",
        )
    return _probe_video(source)


def _boxes_fit(source: IO[bytes]) -> bool:
    """Whether the file's top-level boxes end exactly where it ends: a video cut short (a
    server that sent less than it announced, then closed) has a last box that runs past it."""
    total = source.seek(0, io.SEEK_END)
    position = 0
    try:
        while position < total:
            source.seek(position)
            header = source.read(16)
            if len(header) < 8:
                return False
            size = int.from_bytes(header[:4], "big")
            if size == 1:  # a 64-bit size follows the type
                if len(header) < 16:
                    return False
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:  # the box runs to the end of the file
                return True
            if size < 8:
                return False
            position += size
        return position == total
    finally:
        source.seek(0)


def _probe_image(source: IO[bytes], kind: str, url: str, complete: bool) -> Probe:
    try:
        with Image.open(source) as image:
            found = _PILLOW_TYPES.get(image.format or "")
            width, height = image.size
            if found is not None and complete:
                image.verify()  # chunk checksums: a file cut short or damaged fails here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        if complete:
            raise _unreadable(kind, url) from None
        return None, None, None, None
    if found is None or found not in ALLOWED_TYPES[kind]:
        noun = _NOUNS[kind]
        raise MediaError(
            f"The {noun} at {shown(url)} is a {image.format or 'file of another kind'}; "
            f"{_a(noun)} must be {_type_list(kind)}.",
            "wrong_type",
        )
    return found, width, height, None


def _mp4_parser(source: IO[bytes]) -> Any:
    # Imported on the first video: hachoir's parser package loads every parser it has, 0.6 s
    # of every API and worker start-up otherwise.
    from hachoir.core import config
    from hachoir.parser.container.mp4 import MP4File
    from hachoir.stream import InputIOStream

    # hachoir reports a file cut short on stderr; `inspect` reads only a file's start, on purpose.
    config.quiet = True
    return MP4File(InputIOStream(source, source="media", tags=[]), validate=False)


def _probe_video(source: IO[bytes]) -> Probe:
    """Duration from mvhd, and the frame size of the first track that has one (tkhd), turned
    upright when its matrix rotates it a quarter turn (how phones store portrait video)."""
    content_type = "video/mp4"
    duration: float | None = None
    size: tuple[int, int] | None = None
    try:
        parser = _mp4_parser(source)
        for atom in parser:
            tag = atom["tag"].value
            if tag == "ftyp" and atom["file_type/brand"].value == "qt  ":
                content_type = "video/quicktime"
            if tag != "moov":
                continue
            for box in atom["movie"]:
                if box["tag"].value == "mvhd":
                    header = box["movie_hdr"]
                    if header["time_scale"].value and header["duration"].value:
                        duration = header["duration"].value / header["time_scale"].value
                elif box["tag"].value == "trak" and size is None:
                    size = _track_size(box["track"])
            break
    except Exception:  # noqa: S110 -- a damaged or partial file: what was read stands
        pass
    width, height = size if size is not None else (None, None)
    return content_type, width, height, duration


def _track_size(track: Any) -> tuple[int, int] | None:
    for box in track:
        if box["tag"].value != "tkhd":
            continue
        header = box["track_hdr"]
        width = int(header["frame_size_width"].value)
        height = int(header["frame_size_height"].value)
        if not (width and height):
            return None
        quarter_turn = header["geom_a"].value == 0 and header["geom_d"].value == 0
        return (height, width) if quarter_turn else (width, height)
    return None
