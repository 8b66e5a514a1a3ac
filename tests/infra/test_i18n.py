"""The one decision of the language a message is written in (infra/i18n.py). Pure."""

from __future__ import annotations

from datetime import date

import pytest

from infra.i18n import language, month_name


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("fr", "fr"),
        ("fr-CA", "fr"),
        ("fr_BE", "fr"),
        ("FR", "fr"),
        ("Fr-ca", "fr"),
        ("FR-CA", "fr"),
        ("en", "en"),
        ("en-GB", "en"),
        ("EN", "en"),
        ("de", "en"),
        ("es-MX", "en"),
        ("", "en"),
        (None, "en"),
        (" fr", "en"),
        ("f", "en"),
    ],
)
def test_a_locale_is_written_in_french_or_english(locale, expected):
    assert language(locale) == expected


@pytest.mark.parametrize(
    ("month", "locale", "expected"),
    [
        (date(2026, 11, 1), "fr-CA", "novembre 2026"),
        (date(2026, 11, 30), "FR", "novembre 2026"),
        (date(2026, 8, 1), "fr", "août 2026"),
        (date(2026, 11, 1), "en", "November 2026"),
        (date(2026, 1, 15), "de", "January 2026"),
    ],
)
def test_month_names_follow_the_language(month, locale, expected):
    assert month_name(month, locale) == expected
