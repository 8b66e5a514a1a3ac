"""One place to read the time, so tests and jobs agree on it."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
