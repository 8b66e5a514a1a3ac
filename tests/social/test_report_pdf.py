"""The monthly client report PDF, pure: what a client reads in it (read back with pypdf) in French
and in English, the charts' drawing, missing figures, alerts, long tables and an empty month."""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from pypdf import PdfReader

from social.connectors.types import Platform
from social.report_pdf import (
    _brand_followers,
    format_count,
    format_day,
    format_decimal,
    format_percent,
    nice_ticks,
    render_report_pdf,
)
from social.schemas import (
    AnomalyRead,
    ClientReport,
    ReportAccount,
    ReportBrand,
    ReportDay,
    ReportTotals,
)
from tests.support.pdf import read

AUGUST = [date(2026, 8, 1) + timedelta(days=n) for n in range(31)]
GENERATED = datetime(2026, 9, 2, 7, 30, tzinfo=UTC)


def totals(**figures: int | float | None) -> ReportTotals:
    blank: dict[str, int | float | None] = dict.fromkeys(ReportTotals.model_fields)
    return ReportTotals.model_validate(blank | figures)


def account(
    platform: Platform,
    *,
    display_name: str | None = None,
    handle: str | None = None,
    followers: int | None = 1_000,
    growth: int = 10,
    engagements: int | None = 300,
    from_day: int = 1,
    report_totals: ReportTotals | None = None,
) -> ReportAccount:
    daily = [
        ReportDay(
            day=day,
            followers=None if followers is None or day.day < from_day else followers + growth * n,
            engagements=None if engagements is None or day.day < from_day else engagements + n % 7,
            impressions=None,
        )
        for n, day in enumerate(AUGUST)
    ]
    return ReportAccount(
        id=uuid.uuid4(),
        platform=platform,
        handle=handle,
        display_name=display_name,
        totals=report_totals or totals(followers_end=followers),
        daily=daily,
    )


CLIENT_TOTALS = totals(
    followers_start=12_000,
    followers_end=12_345,
    follower_change=345,
    impressions=1_234_567,
    reach=98_765,
    engagements=4_321,
    posts_published=27,
    video_views=None,
    engagement_rate=0.034,
)


def report(language: str = "fr", **changes: object) -> ClientReport:
    instagram = account(
        Platform.instagram_business,
        display_name="Pâtisserie Noël",
        handle="patisserie.noel",
        followers=11_000,
        report_totals=totals(
            followers_start=11_000,
            followers_end=11_300,
            follower_change=300,
            impressions=1_000_000,
            engagements=4_000,
            engagement_rate=0.004,
            posts_published=20,
        ),
    )
    facebook = account(
        Platform.facebook_page, handle="noelfb", followers=1_000, growth=1, engagements=None
    )
    linkedin = account(Platform.linkedin_organization, display_name="Brasserie Zoé SA")
    noel = ReportBrand(
        id=uuid.uuid4(),
        name="Pâtisserie Noël",
        totals=totals(
            followers_start=12_000,
            followers_end=12_330,
            follower_change=330,
            impressions=1_200_000,
            engagements=4_100,
            engagement_rate=0.0034,
        ),
        accounts=[instagram, facebook],
    )
    zoe = ReportBrand(
        id=uuid.uuid4(),
        name="Brasserie Zoé",
        totals=totals(followers_end=1_300),
        accounts=[linkedin],
    )
    anomaly = AnomalyRead(
        id=uuid.uuid4(),
        account_id=instagram.id,
        brand_id=noel.id,
        day=date(2026, 8, 12),
        metric="follower_change",
        value=-250,
        median=12.0,
        mad=3.0,
        score=-18.54,
        direction="drop",
        detected_at=GENERATED,
    )
    spike = anomaly.model_copy(
        update={
            "id": uuid.uuid4(),
            "day": date(2026, 8, 3),
            "metric": "engagements",
            "value": 2_500,
            "median": 302.5,
            "mad": 2.0,
            "score": 98.9,
            "direction": "spike",
            "account_id": linkedin.id,
            "brand_id": zoe.id,
        }
    )
    fields: dict[str, object] = {
        "client_id": uuid.uuid4(),
        "client_name": "Café Élysée",
        "agency_name": "Agence Lumière",
        "month": "2026-08",
        "language": language,
        "generated_at": GENERATED,
        "totals": CLIENT_TOTALS,
        "brands": [noel, zoe],
        "anomalies": [anomaly, spike],
    }
    return ClientReport.model_validate(fields | changes)


def drawing(reader: PdfReader, page: int = 0) -> str:
    return reader.pages[page].get_contents().get_data().decode("cp1252")  # type: ignore[union-attr]


def shown(reader: PdfReader) -> list[str]:
    """Every piece of text drawn, in drawing order (no-break spaces as spaces)."""
    strokes = "\n".join(drawing(reader, n) for n in range(len(reader.pages)))
    return [t.replace("\u00a0", " ") for t in re.findall(r"BT [^\n]*? \((.*?)\) Tj ET", strokes)]


def chart_labels(labels: list[str], title: str, nth: int = 0) -> list[str]:
    """The axis labels drawn after the `nth` chart titled `title`: y ticks, then x days."""
    starts = [n for n, label in enumerate(labels) if label == title]
    following = labels[starts[nth] + 1 :]
    days = following.index("31")
    return following[: days + 1]


def test_french_report_reads_as_the_client_sees_it() -> None:
    reader, text = read(render_report_pdf(report("fr")))
    assert "Rapport mensuel — août 2026" in text
    assert "Café Élysée" in text
    assert "Préparé par Agence Lumière · généré le 2 septembre 2026" in text
    assert reader.metadata is not None
    assert reader.metadata.title == "Rapport mensuel — août 2026 — Café Élysée"
    # The summary, in French number format; a figure the platforms lack is "—", not 0.
    for figure in (
        "Abonnés en début de mois 12 000",
        "Abonnés en fin de mois 12 345",
        "Évolution des abonnés +345",
        "Impressions 1 234 567",
        "Portée 98 765",
        "Taux d'engagement 3,4 %",
        "Publications 27",
        "Vues de vidéos —",
    ):
        assert figure in text
    # Brands, their accounts and the table's columns.
    assert "Pâtisserie Noël" in text
    assert "Brasserie Zoé" in text
    assert "Abonnés par jour" in text
    assert "Engagements par jour" in text
    assert "Compte Réseau Abonnés Évolution" in text
    assert "Pâtisserie Noël Instagram 11 300 +300 1 000 000 — 4 000 0,4 % 20 —" in text
    assert "@noelfb Facebook" in text
    assert "Brasserie Zoé SA LinkedIn" in text
    # The alerts, in order of day, each with its figures.
    assert "Alertes" in text
    drop = (
        "12 août 2026 — Instagram Pâtisserie Noël (Pâtisserie Noël) — Chute des abonnés : -250 "
        "(habituel : 12 ± 3, score -18,5)"
    )
    spike = (
        "3 août 2026 — LinkedIn Brasserie Zoé SA (Brasserie Zoé) — Pic d'engagements : 2 500 "
        "(habituel : 302,5 ± 2, score 98,9)"
    )
    assert spike in text
    assert drop in text
    assert text.index(spike) < text.index(drop)
    assert "Aucune donnée" not in text


def test_english_report() -> None:
    reader, text = read(render_report_pdf(report("en")))
    assert "Monthly report — August 2026" in text
    assert "Prepared by Agence Lumière · generated on 2 September 2026" in text
    for figure in (
        "Followers at start of month 12,000",
        "Followers at end of month 12,345",
        "Follower change +345",
        "Impressions 1,234,567",
        "Engagement rate 3.4%",
        "Video views —",
    ):
        assert figure in text
    assert "Pâtisserie Noël Instagram 11,300 +300 1,000,000 — 4,000 0.4% 20 —" in text
    assert "Followers per day" in text
    assert (
        "12 August 2026 — Instagram Pâtisserie Noël (Pâtisserie Noël) — Follower drop: -250 "
        "(usual: 12 ± 3, score -18.5)"
    ) in text
    assert "Engagement spike: 2,500 (usual: 302.5 ± 2, score 98.9)" in text
    assert "Rapport" not in text
    assert reader.metadata is not None
    assert reader.metadata.title == "Monthly report — August 2026 — Café Élysée"


def test_the_charts_are_drawn() -> None:
    reader, _ = read(render_report_pdf(report("en")))
    strokes = "".join(drawing(reader, n) for n in range(len(reader.pages)))
    # Line chart: one segment per pair of consecutive days, for each of the two brands.
    segments = re.findall(r"[\d.]+ [\d.]+ m [\d.]+ [\d.]+ l S", strokes)
    assert len(segments) >= 2 * 30
    # Bar chart: one filled rectangle per day with engagements, for each brand.
    bars = re.findall(r"[\d.]+ [\d.]+ [\d.]+ -?[\d.]+ re f", strokes)
    assert len(bars) >= 2 * 31
    # Axis labels: round ticks around the brand's followers (two accounts summed, 12,000 on
    # 1 August to 12,330 on the 31st) and from 0 past the busiest day's engagements (306); days
    # 1 and 31 under each chart.
    labels = shown(reader)
    assert chart_labels(labels, "Followers per day") == [
        "12,000",
        "12,100",
        "12,200",
        "12,300",
        "12,400",
        "1",
        "31",
    ]
    engagements = chart_labels(labels, "Engagements per day")
    assert engagements == ["0", "100", "200", "300", "400", "1", "31"]


def test_missing_figures_and_an_empty_chart() -> None:
    silent = account(Platform.youtube, handle="noel", followers=None, engagements=None)
    brand = ReportBrand(id=uuid.uuid4(), name="Marque muette", totals=totals(), accounts=[silent])
    _, text = read(render_report_pdf(report("fr", brands=[brand], anomalies=[])))
    assert text.count("Pas de données") == 2
    assert "@noel YouTube — — — — — — — —" in text
    assert "Aucune anomalie n'a été détectée ce mois-ci." in text


def test_a_brand_without_accounts() -> None:
    brand = ReportBrand(id=uuid.uuid4(), name="New brand", totals=totals(), accounts=[])
    _, text = read(render_report_pdf(report("en", brands=[brand], anomalies=[])))
    assert "New brand" in text
    assert "No social account is followed for this brand." in text
    assert "Followers per day" not in text


@pytest.mark.parametrize("language", ["fr", "en"])
def test_an_empty_month_is_still_a_report(language: str) -> None:
    empty = report(language, totals=totals(), brands=[], anomalies=[])
    reader, text = read(render_report_pdf(empty))
    assert len(reader.pages) == 1
    expected = {
        "fr": ("Rapport mensuel — août 2026", "Aucune donnée pour ce mois.", "Aucune anomalie"),
        "en": ("Monthly report — August 2026", "No data for this month.", "No anomaly"),
    }[language]
    for sentence in expected:
        assert sentence in text
    assert text.count("—") >= 9 + 1  # the nine figures, plus the title's dash


def test_a_long_table_runs_onto_more_pages_with_its_header() -> None:
    accounts = [account(Platform.x, handle=f"compte{n}", followers=100 + n) for n in range(60)]
    brand = ReportBrand(id=uuid.uuid4(), name="Grande marque", totals=totals(), accounts=accounts)
    reader, text = read(render_report_pdf(report("fr", brands=[brand], anomalies=[])))
    assert len(reader.pages) >= 2
    assert text.count("Compte Réseau Abonnés") >= 2
    for n in (0, 59):
        assert f"@compte{n} X" in text
    assert f"Page 1/{len(reader.pages)}" in text
    assert f"Page {len(reader.pages)}/{len(reader.pages)}" in text


def test_long_names_and_characters_beyond_the_core_fonts() -> None:
    named = account(
        Platform.tiktok, display_name="Un nom de compte beaucoup trop long 🎉 pour sa case"
    )
    brand = ReportBrand(id=uuid.uuid4(), name="Marque 🎉 “fête”", totals=totals(), accounts=[named])
    _, text = read(render_report_pdf(report("fr", brands=[brand], anomalies=[])))
    assert "Marque ? “fête”" in text
    assert "Un nom de compte…" in text or "Un nom de…" in text


def test_the_same_report_gives_the_same_bytes() -> None:
    # The creation date is the report's own, so a stored or cached PDF can be compared.
    same = report("fr")
    assert render_report_pdf(same) == render_report_pdf(same)


def test_a_followed_account_that_has_gone_is_still_reported() -> None:
    base = report("en")
    orphan = base.anomalies[0].model_copy(update={"account_id": uuid.uuid4()})
    _, text = read(render_report_pdf(base.model_copy(update={"anomalies": [orphan]})))
    assert "an account no longer followed — Follower drop: -250" in text


def test_brand_followers_wait_for_every_account() -> None:
    early = account(Platform.x, followers=100, growth=1)
    late = account(Platform.x, followers=50, growth=0, from_day=10)
    silent = account(Platform.x, followers=None)
    gappy = early.model_copy(
        update={
            "daily": [
                d.model_copy(update={"followers": None}) if d.day.day in (20, 21) else d
                for d in early.daily
            ]
        }
    )
    series = _brand_followers([gappy, late, silent], AUGUST)
    assert series[:9] == [None] * 9  # `late` has no count yet: no misleading jump on day 10
    assert series[9] == 109 + 50
    assert series[19:21] == [118 + 50, 118 + 50]  # a missing day keeps the last count
    assert series[30] == 130 + 50
    assert _brand_followers([silent], AUGUST) == [None] * 31


NNBSP = "\u202f"
FORMATS = [
    (format_count(12_345, "fr"), f"12{NNBSP}345"),
    (format_count(12_345, "en"), "12,345"),
    (format_count(-1_234_567, "fr"), f"-1{NNBSP}234{NNBSP}567"),
    (format_count(345, "en", signed=True), "+345"),
    (format_count(0, "en", signed=True), "0"),
    (format_count(None, "fr"), "—"),
    (format_percent(0.034, "fr"), f"3,4{NNBSP}%"),
    (format_percent(0.034, "en"), "3.4%"),
    (format_percent(0.0, "en"), "0.0%"),
    (format_percent(None, "en"), "—"),
    (format_decimal(50.0, "fr"), "50"),
    (format_decimal(302.5, "fr"), "302,5"),
    (format_decimal(1_234.25, "fr"), f"1{NNBSP}234,2"),
    (format_decimal(-9.44, "en"), "-9.4"),
    (format_decimal(-0.04, "en"), "0"),
    (format_day(date(2026, 8, 1), "fr"), "1er août 2026"),
    (format_day(date(2026, 8, 12), "en"), "12 August 2026"),
]


@pytest.mark.parametrize(("formatted", "expected"), FORMATS, ids=[f[1] for f in FORMATS])
def test_formats(formatted: str, expected: str) -> None:
    assert formatted == expected


TICKS = [
    # (low, high) -> the labelled values: multiples of 1, 2 or 5 x 10^n around the range
    ((0, 306), [0, 100, 200, 300, 400]),
    ((12_000, 12_330), [12_000, 12_100, 12_200, 12_300, 12_400]),
    ((71_816, 73_156), [71_500, 72_000, 72_500, 73_000, 73_500]),
    ((0, 7), [0, 2, 4, 6, 8]),
    ((0, 10), [0, 5, 10]),
    ((0, 1), [0, 1]),
    ((3, 4), [3, 4]),
    ((98, 102), [98, 99, 100, 101, 102]),
    ((-50, 120), [-50, 0, 50, 100, 150]),
    ((0, 999_999), [0, 500_000, 1_000_000]),
    ((1_234_567, 1_234_567), [1_234_567]),
    ((0, 0), [0]),
]


@pytest.mark.parametrize(("bounds", "expected"), TICKS, ids=[str(t[0]) for t in TICKS])
def test_nice_ticks(bounds: tuple[int, int], expected: list[int]) -> None:
    low, high = bounds
    ticks = nice_ticks(low, high)
    assert ticks == expected
    assert ticks[0] <= low and ticks[-1] >= high
    if len(ticks) > 1:
        steps = {b - a for a, b in itertools.pairwise(ticks)}
        assert len(steps) == 1
        (step,) = steps
        assert int(str(step)[0]) in (1, 2, 5) and set(str(step)[1:]) <= {"0"}
        assert (high - low) / step <= 4


def test_nice_ticks_refuse_a_reversed_range() -> None:
    with pytest.raises(ValueError):
        nice_ticks(5, 4)


def test_french_axis_labels_group_thousands() -> None:
    reader, _ = read(render_report_pdf(report("fr")))
    labels = shown(reader)
    assert chart_labels(labels, "Abonnés par jour") == [
        "12 000",
        "12 100",
        "12 200",
        "12 300",
        "12 400",
        "1",
        "31",
    ]
    # The second brand: one LinkedIn account from 1,000 to 1,300 followers.
    assert chart_labels(labels, "Abonnés par jour", 1) == [
        "1 000",
        "1 100",
        "1 200",
        "1 300",
        "1",
        "31",
    ]


def test_a_flat_series_is_labelled_once() -> None:
    steady = account(Platform.x, handle="plat", followers=73_156, growth=0)
    flat = steady.model_copy(
        update={"daily": [d.model_copy(update={"engagements": 0}) for d in steady.daily]}
    )
    brand = ReportBrand(id=uuid.uuid4(), name="Plate", totals=totals(), accounts=[flat])
    reader, _ = read(render_report_pdf(report("en", brands=[brand], anomalies=[])))
    labels = shown(reader)
    assert chart_labels(labels, "Followers per day") == ["73,156", "1", "31"]
    assert chart_labels(labels, "Engagements per day") == ["0", "1", "31"]
