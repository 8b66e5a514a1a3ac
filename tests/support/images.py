"""Small real images made by Pillow, for the tests that upload logos."""

from __future__ import annotations

from io import BytesIO

from PIL import Image


def image_bytes(
    kind: str = "PNG", *, size: tuple[int, int] = (64, 32), color: str = "navy"
) -> bytes:
    """A whole image of `kind` (PNG, JPEG or WEBP): a different colour, different bytes."""
    buffer = BytesIO()
    Image.new("RGB", size, color).save(buffer, format=kind)
    return buffer.getvalue()
