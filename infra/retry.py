"""How a job that arq retries waits: exponential backoff from JOB_RETRY_BASE_SECONDS, capped at
an hour, and whether this try is the job's last (then the failure is recorded where a person
sees it, instead of retried)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

MAX_BACKOFF = timedelta(hours=1)


def backoff(ctx: dict[str, Any]) -> timedelta:
    """The wait before the next try: base × 2^(try − 1), at most an hour."""
    base = ctx["settings"].job_retry_base_seconds
    seconds = base * 2 ** (int(ctx.get("job_try", 1)) - 1)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def final_try(ctx: dict[str, Any], max_tries: int) -> bool:
    return int(ctx.get("job_try", 1)) >= max_tries
