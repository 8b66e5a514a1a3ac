"""A real HTTP server on loopback serving generated media files, for the publishing tests.

``MediaServer().start()`` serves from a daemon thread (the standard library's threading HTTP
server, so that a test can make it send what a well-behaved framework would refuse to: a
Content-Length that lies). Every file is generated from its URL, and large ones are streamed
from a few fixed blocks, so serving a 50 MB video allocates almost nothing::

    /image.png?w=1080&h=1350           also .jpg, .gif, .webp; &bytes=N pads the file to N bytes
    /video.mp4?w=1080&h=1920&seconds=30&bytes=N
                                       a structurally valid MP4 (ftyp, moov with mvhd and a
                                       video trak whose tkhd holds the size, mdat padding to N
                                       bytes); &rotate=90 stores the frame sideways with a
                                       rotation matrix, as phones do; &moov=end puts the moov box
                                       after the mdat (a file not prepared for streaming)
    /video.mov?...                     the same as QuickTime
    /document.pdf                      a one-page PDF
    /text.txt                          plain text
    /redirect?to=URL&times=N&status=302
                                       N redirects in a row, then to URL (relative or absolute)

On any of them: ``type=`` replaces the Content-Type (empty: none is sent), ``length=``
declares a false Content-Length (the real body is sent, then the connection closed),
``chunked=1`` sends no Content-Length, ``ranges=0`` ignores Range headers (which are
otherwise honoured with 206), ``status=`` answers that status with the body, and
``delay=SECONDS`` waits before answering (a slow host, for tests that act mid-download).
``server.requests`` lists what was asked.
"""

from __future__ import annotations

import io
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from PIL import Image

_BLOCK = 64 * 1024
_ZEROS = bytes(_BLOCK)

IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
_PIL_FORMATS = {"png": "PNG", "jpg": "JPEG", "gif": "GIF", "webp": "WEBP"}
VIDEO_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime"}

Segment = bytes | int
"""Bytes, or a count of zero bytes (padding, never held in memory)."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names."""


# --- generated files ------------------------------------------------------------------------


def image_bytes(extension: str, width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, _PIL_FORMATS[extension])
    return buffer.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


_IDENTITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_ROTATE_90 = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)


def _matrix(values: tuple[int, ...]) -> bytes:
    return struct.pack(">9i", *values)


def moov_box(width: int, height: int, seconds: float, rotate: int = 0) -> bytes:
    """moov(mvhd, trak(tkhd, mdia(mdhd, hdlr 'vide'))): what a player (and our probe) reads for
    the duration and the frame size, laid out as ISO/IEC 14496-12 §8.2.2, §8.3.2, §8.4.2."""
    timescale = 1000
    duration = round(seconds * timescale)
    mvhd = _box(
        b"mvhd",
        struct.pack(">B3xIIII", 0, 0, 0, timescale, duration)
        + struct.pack(">iH10x", 0x10000, 0x0100)
        + _matrix(_IDENTITY)
        + bytes(24)
        + struct.pack(">I", 2),
    )
    stored_w, stored_h = (height, width) if rotate in (90, 270) else (width, height)
    tkhd = _box(
        b"tkhd",
        struct.pack(">B3BIII4xI8x", 0, 0, 0, 3, 0, 0, 1, duration)
        + struct.pack(">hhH2x", 0, 0, 0)
        + _matrix(_ROTATE_90 if rotate in (90, 270) else _IDENTITY)
        + struct.pack(">II", stored_w << 16, stored_h << 16),
    )
    mdhd = _box(b"mdhd", struct.pack(">B3xIIIIHH", 0, 0, 0, timescale, duration, 0x55C4, 0))
    hdlr = _box(b"hdlr", struct.pack(">B3xI4s12x", 0, 0, b"vide") + b"VideoHandler\x00")
    trak = _box(b"trak", tkhd + _box(b"mdia", mdhd + hdlr))
    return _box(b"moov", mvhd + trak)


def video_segments(
    extension: str,
    width: int,
    height: int,
    seconds: float,
    size: int,
    *,
    rotate: int = 0,
    moov_at_end: bool = False,
) -> list[Segment]:
    brand = b"qt  " if extension == "mov" else b"isom"
    brands = [b"qt  "] if extension == "mov" else [b"isom", b"iso2", b"avc1", b"mp41"]
    ftyp = _box(b"ftyp", brand + struct.pack(">I", 0x200) + b"".join(brands))
    moov = moov_box(width, height, seconds, rotate)
    padding = max(0, size - len(ftyp) - len(moov) - 8)
    mdat_header = struct.pack(">I", 8 + padding) + b"mdat"
    if moov_at_end:
        return [ftyp, mdat_header, padding, moov]
    return [ftyp, moov, mdat_header, padding]


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def _length(segments: list[Segment]) -> int:
    return sum(s if isinstance(s, int) else len(s) for s in segments)


def _slice(segments: list[Segment], start: int, end: int) -> Iterator[bytes]:
    """Bytes start..end (exclusive) of the file, in blocks of at most 64 KiB."""
    position = 0
    for segment in segments:
        length = segment if isinstance(segment, int) else len(segment)
        low, high = max(start, position), min(end, position + length)
        while low < high:
            take = min(high - low, _BLOCK)
            if isinstance(segment, int):
                yield _ZEROS[:take] if take < _BLOCK else _ZEROS
            else:
                yield segment[low - position : low - position + take]
            low += take
        position += length


# --- the server -----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.server.owner._record(
            Request("GET", self.path, {k.lower(): v for k, v in self.headers.items()})
        )
        if "delay" in query:
            time.sleep(float(query["delay"]))
        try:
            self._answer(parts.path, query)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading: what tests provoke

    def _answer(self, path: str, query: dict[str, str]) -> None:
        if path == "/redirect":
            times = int(query.get("times", "1"))
            target = query.get("to", "/text.txt")
            if times > 1:
                rest = {**query, "times": str(times - 1)}
                location = "/redirect?" + urlencode(rest)
            else:
                location = urljoin(f"http://{self.headers.get('host', '')}/redirect", target)
            self._send_head(int(query.get("status", "302")), {"Location": location}, 0)
            return
        found = self._file(path, query)
        if found is None:
            self._send_head(404, {"Content-Type": "text/plain"}, 9)
            self.wfile.write(b"not found")
            return
        content_type, segments = found
        total = _length(segments)
        status = int(query.get("status", "200"))
        declared_type = query.get("type", content_type)
        headers = {"Content-Type": declared_type} if declared_type else {}
        start, end = 0, total
        if query.get("ranges") != "0" and status == 200:
            headers["Accept-Ranges"] = "bytes"
            wanted = _range(self.headers.get("range"), total)
            if wanted is not None:
                start, end = wanted
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
        if query.get("chunked") == "1":
            self._send_head(status, {**headers, "Transfer-Encoding": "chunked"}, None)
            for block in _slice(segments, start, end):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            self.wfile.write(b"0\r\n\r\n")
            return
        declared = int(query["length"]) if "length" in query else end - start
        self._send_head(status, headers, declared, close="length" in query)
        for block in _slice(segments, start, end):
            self.wfile.write(block)

    def _file(self, path: str, query: dict[str, str]) -> tuple[str, list[Segment]] | None:
        name, _, extension = path.lstrip("/").partition(".")
        width, height = int(query.get("w", "1080")), int(query.get("h", "1080"))
        if name == "image" and extension in IMAGE_TYPES:
            data = image_bytes(extension, width, height)
            padding = max(0, int(query.get("bytes", "0")) - len(data))
            return IMAGE_TYPES[extension], [data, padding]
        if name == "video" and extension in VIDEO_TYPES:
            segments = video_segments(
                extension,
                width,
                height,
                float(query.get("seconds", "30")),
                int(query.get("bytes", "100000")),
                rotate=int(query.get("rotate", "0")),
                moov_at_end=query.get("moov") == "end",
            )
            return VIDEO_TYPES[extension], segments
        if path == "/document.pdf":
            return "application/pdf", [PDF]
        if path == "/text.txt":
            return "text/plain; charset=utf-8", [b"Ceci n'est pas une image.\n"]
        return None

    def _send_head(
        self, status: int, headers: dict[str, str], length: int | None, *, close: bool = False
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()


def _range(header: str | None, total: int) -> tuple[int, int] | None:
    """The one `bytes=a-b` range asked for, as start and exclusive end; None for anything else
    (the whole file is then sent with 200, as RFC 9110 §14.2 allows)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header.removeprefix("bytes=").partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    end = min(int(last) + 1, total) if last else total
    return (start, end) if start < end else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: MediaServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up mid-answer is what the tests provoke


class MediaServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the media server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def start(self) -> MediaServer:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="media", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None
