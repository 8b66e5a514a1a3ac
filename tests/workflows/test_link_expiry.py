"""When an approval link expires, as its e-mail says it: the client's language, the brand's time
zone, named. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows.link_expiry import expiry_moment

MOMENTS = [
    # (UTC instant, locale, zone) -> what the e-mail says
    pytest.param(
        datetime(2026, 12, 8, 22, 0, tzinfo=UTC),
        "fr-CA",
        "America/Montreal",
        "8 décembre 2026 à 17 h 00 (heure de Montréal)",
        id="fr-CA",
    ),
    pytest.param(
        datetime(2026, 12, 8, 22, 0, tzinfo=UTC),
        "en",
        "America/Montreal",
        "December 8, 2026 at 5:00 PM (Montreal time)",
        id="en",
    ),
    pytest.param(
        datetime(2027, 3, 1, 11, 5, tzinfo=UTC),
        "fr",
        "Europe/Paris",
        "1er mars 2027 à 12 h 05 (heure de Paris)",
        id="fr-first-of-the-month",
    ),
    pytest.param(
        datetime(2027, 3, 14, 6, 30, tzinfo=UTC),
        "en",
        "America/Montreal",
        "March 14, 2027 at 1:30 AM (Montreal time)",
        id="before-the-dst-change",
    ),
    pytest.param(
        datetime(2027, 3, 14, 7, 30, tzinfo=UTC),
        "fr-CA",
        "America/Montreal",
        "14 mars 2027 à 3 h 30 (heure de Montréal)",
        id="after-the-dst-change",
    ),
    pytest.param(
        datetime(2027, 11, 1, 3, 59, tzinfo=UTC),
        "en",
        "America/Montreal",
        "October 31, 2027 at 11:59 PM (Montreal time)",
        id="the-local-day-is-not-the-utc-day",
    ),
    pytest.param(
        datetime(2028, 2, 29, 17, 0, tzinfo=UTC),
        "en",
        "America/Montreal",
        "February 29, 2028 at 12:00 PM (Montreal time)",
        id="noon-on-a-leap-day",
    ),
    pytest.param(
        datetime(2028, 3, 1, 5, 0, tzinfo=UTC),
        "en",
        "America/Montreal",
        "March 1, 2028 at 12:00 AM (Montreal time)",
        id="midnight",
    ),
    pytest.param(
        datetime(2027, 1, 1, 0, 30, tzinfo=UTC),
        "fr-CA",
        "America/St_Johns",
        "31 décembre 2026 à 21 h 00 (heure de Saint-Jean de Terre-Neuve)",
        id="half-hour-zone",
    ),
    pytest.param(
        datetime(2027, 1, 1, 0, 30, tzinfo=UTC),
        "en",
        "America/Argentina/Buenos_Aires",
        "December 31, 2026 at 9:30 PM (Buenos Aires time)",
        id="nested-zone-name",
    ),
    pytest.param(
        datetime(2027, 1, 1, 0, 30, tzinfo=UTC),
        "en",
        "UTC",
        "January 1, 2027 at 12:30 AM (UTC)",
        id="utc",
    ),
    pytest.param(
        datetime(2027, 1, 1, 0, 30, tzinfo=UTC),
        "fr",
        "Etc/GMT+5",
        "31 décembre 2026 à 19 h 30 (UTC-05:00)",
        id="offset-zone",
    ),
    pytest.param(
        datetime(2027, 1, 1, 0, 30, tzinfo=UTC),
        "en",
        "Mars/Olympus_Mons",
        "January 1, 2027 at 12:30 AM (UTC)",
        id="unknown-zone-falls-back-to-utc",
    ),
]


@pytest.mark.parametrize(("moment", "locale", "zone", "expected"), MOMENTS)
def test_expiry_moment(moment: datetime, locale: str, zone: str, expected: str) -> None:
    assert expiry_moment(moment, locale, zone) == expected
