"""The retry policy every job that calls out shares (Stripe, the platforms)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from infra.retry import backoff, final_try


def ctx(job_try: int | None, base: float = 5.0) -> dict[str, object]:
    context: dict[str, object] = {"settings": SimpleNamespace(job_retry_base_seconds=base)}
    if job_try is not None:
        context["job_try"] = job_try
    return context


@pytest.mark.parametrize(
    ("job_try", "base", "wait"),
    [
        (None, 5.0, timedelta(seconds=5)),  # arq sets no job_try before the first retry
        (1, 5.0, timedelta(seconds=5)),
        (2, 5.0, timedelta(seconds=10)),
        (4, 5.0, timedelta(seconds=40)),
        (3, 0.5, timedelta(seconds=2)),
        (10, 5.0, timedelta(seconds=2560)),  # just under the cap
        (12, 5.0, timedelta(hours=1)),
        (40, 5.0, timedelta(hours=1)),
    ],
)
def test_backoff_doubles_from_the_base_and_stops_at_an_hour(
    job_try: int | None, base: float, wait: timedelta
) -> None:
    assert backoff(ctx(job_try, base)) == wait


@pytest.mark.parametrize(
    ("job_try", "max_tries", "last"),
    [(None, 8, False), (1, 8, False), (7, 8, False), (8, 8, True), (9, 8, True), (1, 1, True)],
)
def test_the_last_try_is_the_one_that_records_the_failure(
    job_try: int | None, max_tries: int, last: bool
) -> None:
    assert final_try(ctx(job_try), max_tries) is last
