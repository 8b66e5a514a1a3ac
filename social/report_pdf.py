"""The monthly client report as a PDF, in the client's language, with charts drawn by fpdf2.

Pure: it lays out a `ClientReport` (gathered elsewhere) and returns the bytes. The core PDF fonts
are used, so there is no font file to ship; they are set to Windows-1252 rather than fpdf2's
Latin-1 default because that code page also has the em dash, the ellipsis, curly quotes and the
euro sign that French text and "—" for a missing figure need. Other characters become "?".
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from fpdf import FPDF

from infra.i18n import month_name
from social.connectors.types import Platform
from social.schemas import (
    AnomalyRead,
    ClientReport,
    CommunityFigures,
    ReportAccount,
    ReportBrand,
    ReportCommunity,
    ReportTotals,
    TopPost,
)
from tenants.capacity import parse_month

Language = Literal["fr", "en"]
MISSING = "—"
"""Shown for a figure the platforms did not give (not the same as 0)."""
NNBSP = "\u202f"
"""French groups digits and sets off % with a narrow no-break space (as billing's money does)."""

_WORDS: dict[Language, dict[str, str]] = {
    "en": {
        "title": "Monthly report",
        "client": "Client",
        "prepared_by": "Prepared by {agency}",
        "generated": "generated on {date}",
        "summary": "Summary",
        "no_data": "No data for this month.",
        "no_account": "No social account is followed for this brand.",
        "followers_start": "Followers at start of month",
        "followers_end": "Followers at end of month",
        "follower_change": "Follower change",
        "impressions": "Impressions",
        "reach": "Reach",
        "engagements": "Engagements",
        "engagement_rate": "Engagement rate",
        "posts_published": "Posts published",
        "video_views": "Video views",
        "chart_followers": "Followers per day",
        "chart_engagements": "Engagements per day",
        "chart_empty": "No data",
        "col_account": "Account",
        "col_platform": "Network",
        "col_followers": "Followers",
        "col_change": "Change",
        "col_impressions": "Impressions",
        "col_reach": "Reach",
        "col_engagements": "Engagements",
        "col_rate": "Eng. rate",
        "col_posts": "Posts",
        "col_video": "Video views",
        "anomalies": "Alerts",
        "anomalies_intro": "Days far outside the account's usual figures of the previous 28 days:",
        "no_anomaly": "No anomaly was detected this month.",
        "anomaly.follower_change.drop": "Follower drop",
        "anomaly.engagements.spike": "Engagement spike",
        "anomaly_usual": "usual: {median} ± {mad}, score {score}",
        "colon": ":",
        "unknown_account": "an account no longer followed",
        "sandbox": "Demo",
        "page": "Page {page}/{{nb}}",
        "top_posts": "Top posts",
        "top_posts_intro": "The month's posts published by {agency}, most engaging first.",
        "published_on": "published on {date}",
        "open_quote": "\u201c",
        "close_quote": "\u201d",
        "community": "Community",
        "community_intro": (
            "Comments, mentions and messages received this month on the accounts {agency} "
            "looks after, and how fast they were answered."
        ),
        "community_none": "No comment or message was received this month.",
        "received": "Messages received",
        "kind.comment": "Comments",
        "kind.reply": "Replies",
        "kind.mention": "Mentions",
        "kind.message": "Private messages",
        "kind.review": "Reviews",
        "response_rate": "Response rate",
        "first_business": "Median first answer (business hours)",
        "first_business_p90": "90% answered within (business hours)",
        "first_all": "Median first answer (all hours)",
        "first_all_p90": "90% answered within (all hours)",
        "within_target": "Answered within target",
        "breaches": "Targets missed",
        "tone": "Tone",
        "tone_line": "{negative} negative · {neutral} neutral · {positive} positive",
        "col_brand": "Brand",
        "col_received": "Received",
        "col_response_rate": "Answered",
        "col_median": "Median (bus. hours)",
        "col_within": "Within target",
        "col_breaches": "Missed",
    },
    "fr": {
        "title": "Rapport mensuel",
        "client": "Client",
        "prepared_by": "Préparé par {agency}",
        "generated": "généré le {date}",
        "summary": "Synthèse",
        "no_data": "Aucune donnée pour ce mois.",
        "no_account": "Aucun compte social n'est suivi pour cette marque.",
        "followers_start": "Abonnés en début de mois",
        "followers_end": "Abonnés en fin de mois",
        "follower_change": "Évolution des abonnés",
        "impressions": "Impressions",
        "reach": "Portée",
        "engagements": "Engagements",
        "engagement_rate": "Taux d'engagement",
        "posts_published": "Publications",
        "video_views": "Vues de vidéos",
        "chart_followers": "Abonnés par jour",
        "chart_engagements": "Engagements par jour",
        "chart_empty": "Pas de données",
        "col_account": "Compte",
        "col_platform": "Réseau",
        "col_followers": "Abonnés",
        "col_change": "Évolution",
        "col_impressions": "Impressions",
        "col_reach": "Portée",
        "col_engagements": "Engagements",
        "col_rate": "Taux d'eng.",
        "col_posts": "Publications",
        "col_video": "Vues vidéo",
        "anomalies": "Alertes",
        "anomalies_intro": (
            "Jours très éloignés des chiffres habituels du compte sur les 28 jours précédents :"
        ),
        "no_anomaly": "Aucune anomalie n'a été détectée ce mois-ci.",
        "anomaly.follower_change.drop": "Chute des abonnés",
        "anomaly.engagements.spike": "Pic d'engagements",
        "anomaly_usual": "habituel : {median} ± {mad}, score {score}",
        "colon": "\u00a0:",
        "unknown_account": "un compte qui n'est plus suivi",
        "sandbox": "Démo",
        "page": "Page {page}/{{nb}}",
        "top_posts": "Meilleures publications",
        "top_posts_intro": "Les publications du mois par {agency}, les plus engageantes d'abord.",
        "published_on": "publiée le {date}",
        "open_quote": "«\u00a0",
        "close_quote": "\u00a0»",
        "community": "Communauté",
        "community_intro": (
            "Commentaires, mentions et messages reçus ce mois-ci sur les comptes dont {agency} "
            "s'occupe, et la rapidité des réponses."
        ),
        "community_none": "Aucun commentaire ni message n'a été reçu ce mois-ci.",
        "received": "Messages reçus",
        "kind.comment": "Commentaires",
        "kind.reply": "Réponses",
        "kind.mention": "Mentions",
        "kind.message": "Messages privés",
        "kind.review": "Avis",
        "response_rate": "Taux de réponse",
        "first_business": "Délai médian de réponse (heures ouvrables)",
        "first_business_p90": "90\u00a0% répondus en (heures ouvrables)",
        "first_all": "Délai médian de réponse (toutes heures)",
        "first_all_p90": "90\u00a0% répondus en (toutes heures)",
        "within_target": "Réponses dans les délais",
        "breaches": "Délais dépassés",
        "tone": "Tonalité",
        "tone_line": "{negative} négatifs · {neutral} neutres · {positive} positifs",
        "col_brand": "Marque",
        "col_received": "Reçus",
        "col_response_rate": "Répondus",
        "col_median": "Médiane (h. ouvrables)",
        "col_within": "Dans les délais",
        "col_breaches": "Dépassés",
    },
}

_PLATFORMS: dict[Platform, str] = {
    Platform.facebook_page: "Facebook",
    Platform.instagram_business: "Instagram",
    Platform.linkedin_organization: "LinkedIn",
    Platform.x: "X",
    Platform.youtube: "YouTube",
    Platform.tiktok: "TikTok",
}

_TOTALS_ORDER = (
    "followers_start",
    "followers_end",
    "follower_change",
    "impressions",
    "reach",
    "engagements",
    "engagement_rate",
    "posts_published",
    "video_views",
)

# Page geometry, in mm (A4 is 210 x 297).
_MARGIN = 15.0
_WIDTH = 210.0 - 2 * _MARGIN
_BOTTOM = 18.0
_CHART_HEIGHT = 52.0
_CHART_GAP = 6.0
_TEXT = (33, 37, 41)
_MUTED = (108, 117, 125)
_RULE = (206, 212, 218)
_GRID = (233, 236, 239)
_LINE_COLOUR = (37, 99, 235)
_BAR_COLOUR = (13, 148, 136)
_ALERT = (200, 35, 51)
_LINK = (29, 78, 216)


# --- numbers, dates and names in the report's language -------------------------------------


def format_count(value: int | None, language: Language, *, signed: bool = False) -> str:
    """12345 -> '12,345' (en) or '12 345' (fr, narrow no-break space); None -> '—'."""
    if value is None:
        return MISSING
    digits = f"{abs(value):,}"
    if language == "fr":
        digits = digits.replace(",", NNBSP)
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    return sign + digits


def format_decimal(value: float, language: Language, *, places: int = 1) -> str:
    """52.5 -> '52.5' / '52,5'; a whole number loses its '.0' (50.0 -> '50')."""
    text = f"{value:,.{places}f}"
    if places and text.rstrip("0").endswith("."):
        text = text[: text.index(".")]
    if text in ("-0", "-0.0"):
        text = text[1:]
    if language == "fr":
        text = text.translate({ord(","): NNBSP, ord("."): ","})
    return text


def format_percent(fraction: float | None, language: Language) -> str:
    """0.034 -> '3.4%' (en) or '3,4 %' (fr); None -> '—'."""
    if fraction is None:
        return MISSING
    figure = f"{fraction * 100:.1f}"
    return f"{figure.replace('.', ',')}{NNBSP}%" if language == "fr" else f"{figure}%"


def format_duration(minutes: float | None, language: Language) -> str:
    """A response time: 42.4 -> '42 min', 85 -> '1 h 25 min', 1500 -> '25 h 00 min' (a
    business-hours figure is read in hours, not days); under half a minute -> '< 1 min'."""
    if minutes is None:
        return MISSING
    whole = round(minutes)
    if whole < 1:
        return "< 1 min"
    if whole < 60:
        return f"{whole} min"
    hours, rest = divmod(whole, 60)
    return f"{format_count(hours, language)} h {rest:02d} min"


def format_day(day: date, language: Language) -> str:
    """'3 September 2026' / '3 septembre 2026' ('1er' for the first, as French writes it)."""
    number = "1er" if language == "fr" and day.day == 1 else str(day.day)
    return f"{number} {month_name(day, language)}"


_NICE = (1, 2, 5)
_TICK_INTERVALS = 4
"""About how many intervals an axis is cut into: 3 to 7 labels fit a chart's height."""


def nice_ticks(low: int, high: int, intervals: int = _TICK_INTERVALS) -> list[int]:
    """The values to label on an axis that must show `low` to `high`: whole multiples of a step
    of 1, 2 or 5 x 10^n, from the multiple at or below `low` to the one at or above `high`, with
    at most `intervals` steps from `low` to `high`. The chart's axis then runs from the first
    tick to the last, so every label sits on a round figure. A flat series gives its value."""
    if high < low:
        raise ValueError(f"an axis cannot run from {low} down to {high}")
    if high == low:
        return [low]
    step = next(
        nice * 10**power
        for power in range(len(str(high - low)) + 1)
        for nice in _NICE
        if (high - low) / (nice * 10**power) <= intervals
    )
    first, last = (low // step) * step, -(-high // step) * step
    return list(range(first, last + 1, step))


def _platform_name(platform: Platform, words: dict[str, str]) -> str:
    return _PLATFORMS.get(platform, words["sandbox"])


def _account_name(account: ReportAccount, words: dict[str, str]) -> str:
    if account.display_name:
        return account.display_name
    if account.handle:
        return account.handle if account.handle.startswith("@") else f"@{account.handle}"
    return _platform_name(account.platform, words)


def _text(value: str) -> str:
    """What Windows-1252 can show: spaces that it lacks become its no-break space, the rest '?'."""
    for wide in ("\u202f", "\u2009", "\u2007"):
        value = value.replace(wide, "\u00a0")
    value = value.replace("\u2212", "-").replace("→", "->")
    return value.encode("cp1252", "replace").decode("cp1252")


# --- the brand's daily series, from its accounts ------------------------------------------


def _month_days(month: str) -> list[date]:
    first, last = parse_month(month)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _brand_followers(accounts: Sequence[ReportAccount], days: Sequence[date]) -> list[int | None]:
    """Followers of the brand per day: the sum of its accounts' last known counts.

    Followers is a stock: a day an account did not report, its previous count still stands.
    A day before some account's first count is left empty rather than summed without it, or
    the line would jump on the day that account's figures start, like a gain that never was.
    """
    known: list[dict[date, int]] = []
    for account in accounts:
        counts = {d.day: d.followers for d in account.daily if d.followers is not None}
        if counts:
            known.append(counts)
    if not known:
        return [None] * len(days)
    current: list[int | None] = [None] * len(known)
    totals: list[int | None] = []
    for day in days:
        for index, counts in enumerate(known):
            if day in counts:
                current[index] = counts[day]
        values = [v for v in current if v is not None]
        totals.append(sum(values) if len(values) == len(current) else None)
    return totals


def _brand_engagements(accounts: Sequence[ReportAccount], days: Sequence[date]) -> list[int | None]:
    """Engagements of the brand per day: the sum of what its accounts reported that day."""
    by_day: dict[date, int] = {}
    for account in accounts:
        for figure in account.daily:
            if figure.engagements is not None:
                by_day[figure.day] = by_day.get(figure.day, 0) + figure.engagements
    return [by_day.get(day) for day in days]


def _has_data(totals: ReportTotals, accounts: Sequence[ReportAccount]) -> bool:
    if any(getattr(totals, name) is not None for name in _TOTALS_ORDER):
        return True
    for account in accounts:
        if any(getattr(account.totals, name) is not None for name in _TOTALS_ORDER):
            return True
        for figure in account.daily:
            if any(
                v is not None for v in (figure.followers, figure.engagements, figure.impressions)
            ):
                return True
    return False


# --- layout ---------------------------------------------------------------------------------


class _ReportPDF(FPDF):
    def __init__(self, footer_left: str, footer_right: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._footer_left = footer_left
        self._footer_right = footer_right

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("helvetica", "", 7.5)
        self.set_text_color(*_MUTED)
        self.cell(_WIDTH / 2, 5, _fit(self, self._footer_left, _WIDTH / 2))
        self.set_x(_MARGIN + _WIDTH / 2)
        self.cell(_WIDTH / 2, 5, self._footer_right.format(page=self.page_no()), align="R")
        self.set_text_color(*_TEXT)


def _fit(pdf: FPDF, value: str, width: float) -> str:
    """`value` cut with an ellipsis so it stays inside a cell of `width`."""
    text = _text(value)
    room = width - 2 * pdf.c_margin
    if pdf.get_string_width(text) <= room:
        return text
    while text and pdf.get_string_width(text + "…") > room:
        text = text[:-1]
    return text.rstrip() + "…"


def _room_for(pdf: FPDF, height: float) -> None:
    """Start a new page unless `height` more mm fit on this one (drawings do not break pages)."""
    if pdf.get_y() + height > pdf.h - _BOTTOM:
        pdf.add_page()


def _heading(pdf: FPDF, text: str, size: float, *, space_after: float = 1.0) -> None:
    pdf.set_font("helvetica", "B", size)
    pdf.set_text_color(*_TEXT)
    pdf.cell(_WIDTH, size * 0.5, _fit(pdf, text, _WIDTH), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(space_after)


def _paragraph(
    pdf: FPDF, text: str, *, size: float = 10, colour: tuple[int, int, int] = _TEXT
) -> None:
    pdf.set_font("helvetica", "", size)
    pdf.set_text_color(*colour)
    pdf.multi_cell(_WIDTH, size * 0.5, _text(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*_TEXT)


def _totals_values(totals: ReportTotals, language: Language) -> dict[str, str]:
    values = {
        name: format_count(getattr(totals, name), language)
        for name in _TOTALS_ORDER
        if name not in ("follower_change", "engagement_rate")
    }
    values["follower_change"] = format_count(totals.follower_change, language, signed=True)
    values["engagement_rate"] = format_percent(totals.engagement_rate, language)
    return values


def _totals_grid(
    pdf: FPDF, totals: ReportTotals, words: dict[str, str], language: Language
) -> None:
    """The nine figures in two columns of label and value."""
    values = _totals_values(totals, language)
    row_height, column = 6.5, (_WIDTH - 6) / 2
    label_width, value_width = column * 0.64, column * 0.36
    _room_for(pdf, row_height * 5)
    pdf.set_draw_color(*_RULE)
    pdf.set_line_width(0.2)
    for index, name in enumerate(_TOTALS_ORDER):
        left = index % 2 == 0
        x = _MARGIN if left else _MARGIN + column + 6
        pdf.set_x(x)
        pdf.set_font("helvetica", "", 9)
        pdf.set_text_color(*_MUTED)
        pdf.cell(label_width, row_height, _fit(pdf, words[name], label_width), border="B")
        pdf.set_font("helvetica", "B", 9.5)
        pdf.set_text_color(*_TEXT)
        pdf.cell(value_width, row_height, _text(values[name]), border="B", align="R")
        if not left or index == len(_TOTALS_ORDER) - 1:
            pdf.ln(row_height)
    pdf.ln(3)


def _chart_frame(
    pdf: FPDF, x: float, y: float, width: float, height: float, title: str
) -> tuple[float, float, float, float]:
    """Title and axes; returns the plot area (x, y, width, height)."""
    pdf.set_xy(x, y)
    pdf.set_font("helvetica", "B", 8.5)
    pdf.set_text_color(*_TEXT)
    pdf.cell(width, 5, _fit(pdf, title, width))
    area = (x + 16, y + 8, width - 18, height - 15)
    ax, ay, aw, ah = area
    pdf.set_draw_color(*_MUTED)
    pdf.set_line_width(0.25)
    pdf.line(ax, ay, ax, ay + ah)
    pdf.line(ax, ay + ah, ax + aw, ay + ah)
    return area


def _y_label(pdf: FPDF, x: float, y: float, text: str) -> None:
    pdf.set_font("helvetica", "", 6.5)
    pdf.set_text_color(*_MUTED)
    pdf.set_xy(x, y - 2)
    pdf.cell(15, 4, _text(text), align="R")


def _y_axis(
    pdf: FPDF, area: tuple[float, float, float, float], ticks: Sequence[int], language: Language
) -> None:
    """A label, a tick and a faint grid line at each of `ticks` (the axis runs from the first
    to the last); a single tick labels the middle of a flat series."""
    ax, ay, aw, ah = area
    if len(ticks) == 1:
        _y_label(pdf, ax - 16, ay + ah / 2, format_count(ticks[0], language))
        return
    low, high = ticks[0], ticks[-1]
    for tick in ticks:
        y = ay + ah * (1 - (tick - low) / (high - low))
        if tick != low:
            pdf.set_draw_color(*_GRID)
            pdf.set_line_width(0.15)
            pdf.line(ax, y, ax + aw, y)
        pdf.set_draw_color(*_MUTED)
        pdf.set_line_width(0.25)
        pdf.line(ax - 1, y, ax, y)
        _y_label(pdf, ax - 17, y, format_count(tick, language))


def _x_labels(pdf: FPDF, area: tuple[float, float, float, float], days: Sequence[date]) -> None:
    """First and last day of the month under the axis, with a tick each week."""
    ax, ay, aw, ah = area
    step = aw / len(days)
    pdf.set_draw_color(*_MUTED)
    for index in range(0, len(days), 7):
        tick = ax + step * (index + 0.5)
        pdf.line(tick, ay + ah, tick, ay + ah + 1)
    pdf.set_font("helvetica", "", 6.5)
    pdf.set_text_color(*_MUTED)
    for index in (0, len(days) - 1):
        pdf.set_xy(ax + step * (index + 0.5) - 6, ay + ah + 1.2)
        pdf.cell(12, 3.5, str(days[index].day), align="C")


def _empty_chart(pdf: FPDF, area: tuple[float, float, float, float], words: dict[str, str]) -> None:
    ax, ay, aw, ah = area
    pdf.set_font("helvetica", "I", 8)
    pdf.set_text_color(*_MUTED)
    pdf.set_xy(ax, ay + ah / 2 - 2)
    pdf.cell(aw, 4, _text(words["chart_empty"]), align="C")


def _line_chart(
    pdf: FPDF,
    x: float,
    y: float,
    width: float,
    values: Sequence[int | None],
    days: Sequence[date],
    title: str,
    words: dict[str, str],
    language: Language,
) -> None:
    """A line through the known days (a gap where a day is missing), on an axis with round
    ticks around the lowest and highest day (see `nice_ticks`)."""
    area = _chart_frame(pdf, x, y, width, _CHART_HEIGHT, title)
    ax, ay, aw, ah = area
    known = [v for v in values if v is not None]
    if not known:
        _empty_chart(pdf, area, words)
        return
    ticks = nice_ticks(min(known), max(known))
    low, high = ticks[0], ticks[-1]
    _y_axis(pdf, area, ticks, language)
    step = aw / len(values)

    def position(index: int, value: int) -> tuple[float, float]:
        # A flat series sits mid-height rather than on the axis.
        share = 0.5 if high == low else (value - low) / (high - low)
        return ax + step * (index + 0.5), ay + ah * (1 - share)

    pdf.set_draw_color(*_LINE_COLOUR)
    pdf.set_fill_color(*_LINE_COLOUR)
    pdf.set_line_width(0.6)
    for index, value in enumerate(values):
        if value is None:
            continue
        here = position(index, value)
        following = values[index + 1] if index + 1 < len(values) else None
        previous = values[index - 1] if index > 0 else None
        if following is not None:
            pdf.line(*here, *position(index + 1, following))
        elif previous is None:
            # A lone day has no segment: a dot shows it.
            pdf.rect(here[0] - 0.5, here[1] - 0.5, 1, 1, style="F")
    _x_labels(pdf, area, days)


def _bar_chart(
    pdf: FPDF,
    x: float,
    y: float,
    width: float,
    values: Sequence[int | None],
    days: Sequence[date],
    title: str,
    words: dict[str, str],
    language: Language,
) -> None:
    """One bar per day from 0 to the day's figure, on an axis with round ticks from 0; a
    missing day has no bar."""
    area = _chart_frame(pdf, x, y, width, _CHART_HEIGHT, title)
    ax, ay, aw, ah = area
    known = [v for v in values if v is not None]
    if not known:
        _empty_chart(pdf, area, words)
        return
    ticks = nice_ticks(0, max(max(known), 0))
    high = ticks[-1]
    if high == 0:
        _y_label(pdf, ax - 16, ay + ah, format_count(0, language))
    else:
        _y_axis(pdf, area, ticks, language)
    step = aw / len(values)
    pdf.set_fill_color(*_BAR_COLOUR)
    for index, value in enumerate(values):
        if value is None or value <= 0 or high == 0:
            continue
        bar = ah * value / high
        pdf.rect(ax + step * index + step * 0.15, ay + ah - bar, step * 0.7, bar, style="F")
    _x_labels(pdf, area, days)


def _charts(
    pdf: FPDF, brand: ReportBrand, days: Sequence[date], words: dict[str, str], language: Language
) -> None:
    _room_for(pdf, _CHART_HEIGHT + 2)
    top = pdf.get_y()
    half = (_WIDTH - _CHART_GAP) / 2
    _line_chart(
        pdf,
        _MARGIN,
        top,
        half,
        _brand_followers(brand.accounts, days),
        days,
        words["chart_followers"],
        words,
        language,
    )
    _bar_chart(
        pdf,
        _MARGIN + half + _CHART_GAP,
        top,
        half,
        _brand_engagements(brand.accounts, days),
        days,
        words["chart_engagements"],
        words,
        language,
    )
    pdf.set_text_color(*_TEXT)
    pdf.set_xy(_MARGIN, top + _CHART_HEIGHT + 2)


_COLUMNS: tuple[tuple[str, float], ...] = (
    ("col_account", 29),
    ("col_platform", 18),
    ("col_followers", 17),
    ("col_change", 15),
    ("col_impressions", 17),
    ("col_reach", 15),
    ("col_engagements", 19),
    ("col_rate", 16),
    ("col_posts", 17),
    ("col_video", 17),
)


def _accounts_table(
    pdf: FPDF, accounts: Sequence[ReportAccount], words: dict[str, str], language: Language
) -> None:
    row_height = 6.0

    def header() -> None:
        pdf.set_font("helvetica", "B", 7)
        pdf.set_text_color(*_TEXT)
        pdf.set_draw_color(*_MUTED)
        for index, (key, width) in enumerate(_COLUMNS):
            align = "L" if index < 2 else "R"
            pdf.cell(width, row_height, _fit(pdf, words[key], width), border="B", align=align)
        pdf.ln(row_height)

    _room_for(pdf, row_height * 3)
    header()
    pdf.set_draw_color(*_RULE)
    for account in accounts:
        if pdf.get_y() + row_height > pdf.h - _BOTTOM:
            pdf.add_page()
            header()
            pdf.set_draw_color(*_RULE)
        values = _totals_values(account.totals, language)
        cells = (
            _account_name(account, words),
            _platform_name(account.platform, words),
            values["followers_end"],
            values["follower_change"],
            values["impressions"],
            values["reach"],
            values["engagements"],
            values["engagement_rate"],
            values["posts_published"],
            values["video_views"],
        )
        pdf.set_font("helvetica", "", 7.5)
        for index, (text, (_, width)) in enumerate(zip(cells, _COLUMNS, strict=True)):
            align = "L" if index < 2 else "R"
            pdf.cell(width, row_height, _fit(pdf, text, width), border="B", align=align)
        pdf.ln(row_height)
    pdf.ln(4)


_POST_FIGURES = ("impressions", "reach", "engagements", "video_views")


def _without_symbols(value: str) -> str:
    """A post's text without the emoji and other pictographs the core fonts cannot draw: they
    decorate a post, and a row of "?" in their place reads as an error."""

    def drawable(char: str) -> bool:
        try:
            char.encode("cp1252")
            return True
        except UnicodeEncodeError:
            return not unicodedata.category(char).startswith(("S", "Cf", "Mn"))

    return " ".join("".join(c for c in value if drawable(c)).split())


def _post_who(post: TopPost, words: dict[str, str]) -> str:
    try:
        network = _platform_name(Platform(post.platform), words)
    except ValueError:
        network = post.platform
    if not post.handle:
        return network
    handle = post.handle if post.handle.startswith("@") else f"@{post.handle}"
    return f"{network} {handle}"


def _top_posts(
    pdf: FPDF,
    posts: Sequence[TopPost],
    agency: str,
    words: dict[str, str],
    language: Language,
    zone: ZoneInfo,
) -> None:
    """Each post: who and when, its permalink (a link), its figures, and its text's start."""
    _room_for(pdf, 10 + 24)
    _heading(pdf, words["top_posts"], 11, space_after=1)
    _paragraph(pdf, words["top_posts_intro"].format(agency=agency), size=8.5, colour=_MUTED)
    pdf.ln(1.5)
    for rank, post in enumerate(posts, start=1):
        _room_for(pdf, 24)
        day = post.published_at.astimezone(zone).date()
        pdf.set_font("helvetica", "B", 9)
        pdf.set_text_color(*_TEXT)
        when = words["published_on"].format(date=format_day(day, language))
        pdf.cell(
            _WIDTH,
            4.8,
            _fit(pdf, f"{rank}. {_post_who(post, words)} — {when}", _WIDTH),
            new_x="LMARGIN",
            new_y="NEXT",
        )
        if post.permalink:
            pdf.set_font("helvetica", "U", 8)
            pdf.set_text_color(*_LINK)
            pdf.cell(
                _WIDTH,
                4.2,
                _fit(pdf, post.permalink, _WIDTH),
                link=post.permalink,
                new_x="LMARGIN",
                new_y="NEXT",
            )
        figures = " · ".join(
            f"{words[name]}{words['colon']} {format_count(getattr(post, name), language)}"
            for name in _POST_FIGURES
        )
        pdf.set_font("helvetica", "", 8.5)
        pdf.set_text_color(*_TEXT)
        pdf.cell(_WIDTH, 4.5, _fit(pdf, figures, _WIDTH), new_x="LMARGIN", new_y="NEXT")
        if post.text:
            pdf.set_font("helvetica", "I", 8.5)
            pdf.set_text_color(*_MUTED)
            quoted = f"{words['open_quote']}{_without_symbols(post.text)}{words['close_quote']}"
            pdf.multi_cell(_WIDTH, 4.2, _text(quoted), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(*_TEXT)
        pdf.ln(2.5)
    pdf.ln(2)


def _brand_section(
    pdf: FPDF,
    brand: ReportBrand,
    days: Sequence[date],
    words: dict[str, str],
    language: Language,
    *,
    agency: str,
    zone: ZoneInfo,
) -> None:
    # Keep the heading with at least the totals and the charts.
    _room_for(pdf, 12 + 6.5 * 5 + 3 + _CHART_HEIGHT)
    pdf.ln(2)
    _heading(pdf, brand.name, 14, space_after=2)
    _totals_grid(pdf, brand.totals, words, language)
    if brand.accounts:
        _charts(pdf, brand, days, words, language)
        _accounts_table(pdf, brand.accounts, words, language)
    else:
        _paragraph(pdf, words["no_account"], colour=_MUTED)
        pdf.ln(3)
    if brand.top_posts:
        _top_posts(pdf, brand.top_posts, agency, words, language, zone)


# --- the community section (the inbox's figures, handed in by the edge) -----------------------

_KINDS = ("comment", "reply", "mention", "message", "review")


def _community_values(
    figures: CommunityFigures, words: dict[str, str], language: Language
) -> list[tuple[str, str]]:
    business, all_hours = figures.first_response_business_hours, figures.first_response_all_hours
    return [
        (words["received"], format_count(figures.volume.total, language)),
        (words["response_rate"], format_percent(figures.response_rate, language)),
        (words["first_business"], format_duration(business.median_minutes, language)),
        (words["first_business_p90"], format_duration(business.p90_minutes, language)),
        (words["first_all"], format_duration(all_hours.median_minutes, language)),
        (words["first_all_p90"], format_duration(all_hours.p90_minutes, language)),
        (words["within_target"], format_percent(figures.within_target_share, language)),
        (words["breaches"], format_count(figures.breaches, language)),
    ]


def _figure_rows(pdf: FPDF, rows: Sequence[tuple[str, str]]) -> None:
    """Label and value pairs in two columns, the labels wider than the totals grid's: the
    response-time labels say which hours they count."""
    row_height, column = 6.5, (_WIDTH - 6) / 2
    label_width, value_width = column * 0.72, column * 0.28
    _room_for(pdf, row_height * 4)
    pdf.set_draw_color(*_RULE)
    pdf.set_line_width(0.2)
    for index, (label, value) in enumerate(rows):
        left = index % 2 == 0
        pdf.set_x(_MARGIN if left else _MARGIN + column + 6)
        pdf.set_font("helvetica", "", 8)
        pdf.set_text_color(*_MUTED)
        pdf.cell(label_width, row_height, _fit(pdf, label, label_width), border="B")
        pdf.set_font("helvetica", "B", 9.5)
        pdf.set_text_color(*_TEXT)
        pdf.cell(value_width, row_height, _fit(pdf, value, value_width), border="B", align="R")
        if not left or index == len(rows) - 1:
            pdf.ln(row_height)
    pdf.ln(2)


_COMMUNITY_COLUMNS = (
    ("col_brand", 50),
    ("col_received", 20),
    ("col_response_rate", 22),
    ("col_median", 38),
    ("col_within", 28),
    ("col_breaches", 22),
)


def _community_table(
    pdf: FPDF, community: ReportCommunity, words: dict[str, str], language: Language
) -> None:
    row_height = 6.0
    _room_for(pdf, row_height * (2 + min(len(community.brands), 3)))
    pdf.set_font("helvetica", "B", 7.5)
    pdf.set_draw_color(*_MUTED)
    for index, (key, width) in enumerate(_COMMUNITY_COLUMNS):
        align = "L" if index == 0 else "R"
        pdf.cell(width, row_height, _fit(pdf, words[key], width), border="B", align=align)
    pdf.ln(row_height)
    pdf.set_draw_color(*_RULE)
    pdf.set_font("helvetica", "", 8)
    for brand in community.brands:
        _room_for(pdf, row_height)
        f = brand.figures
        cells = (
            brand.name,
            format_count(f.volume.total, language),
            format_percent(f.response_rate, language),
            format_duration(f.first_response_business_hours.median_minutes, language),
            format_percent(f.within_target_share, language),
            format_count(f.breaches, language),
        )
        for index, (text, (_, width)) in enumerate(zip(cells, _COMMUNITY_COLUMNS, strict=True)):
            align = "L" if index == 0 else "R"
            pdf.cell(width, row_height, _fit(pdf, text, width), border="B", align=align)
        pdf.ln(row_height)
    pdf.ln(4)


def _community_section(
    pdf: FPDF,
    community: ReportCommunity,
    agency: str,
    words: dict[str, str],
    language: Language,
) -> None:
    _room_for(pdf, 40)
    pdf.ln(2)
    _heading(pdf, words["community"], 14, space_after=2)
    totals = community.totals
    if totals.volume.total == 0:
        _paragraph(pdf, words["community_none"])
        pdf.ln(3)
        return
    _paragraph(pdf, words["community_intro"].format(agency=agency), size=9, colour=_MUTED)
    pdf.ln(1.5)
    _figure_rows(pdf, _community_values(totals, words, language))
    counts = {kind: getattr(totals.volume, kind) for kind in _KINDS}
    kinds = " · ".join(
        f"{words[f'kind.{kind}']}{words['colon']} {format_count(count, language)}"
        for kind, count in counts.items()
        if count
    )
    mood = totals.sentiment
    tone = words["tone_line"].format(
        negative=format_count(mood.negative, language),
        neutral=format_count(mood.neutral, language),
        positive=format_count(mood.positive, language),
    )
    _paragraph(pdf, kinds, size=8.5)
    _paragraph(pdf, f"{words['tone']}{words['colon']} {tone}", size=8.5)
    pdf.ln(3)
    if len(community.brands) > 1:
        _community_table(pdf, community, words, language)


def _anomaly_line(
    anomaly: AnomalyRead,
    accounts: dict[uuid.UUID, tuple[ReportBrand, ReportAccount]],
    words: dict[str, str],
    language: Language,
) -> str:
    found = accounts.get(anomaly.account_id)
    if found is None:
        who = words["unknown_account"]
    else:
        brand, account = found
        network = _platform_name(account.platform, words)
        who = f"{network} {_account_name(account, words)} ({brand.name})"
    what = words.get(
        f"anomaly.{anomaly.metric}.{anomaly.direction}", f"{anomaly.metric} ({anomaly.direction})"
    )
    signed = anomaly.metric == "follower_change"
    usual = words["anomaly_usual"].format(
        median=format_decimal(anomaly.median, language),
        mad=format_decimal(anomaly.mad, language),
        score=format_decimal(anomaly.score, language),
    )
    value = format_count(anomaly.value, language, signed=signed)
    return f"{format_day(anomaly.day, language)} — {who} — {what}{words['colon']} {value} ({usual})"


def _anomalies_section(
    pdf: FPDF, report: ClientReport, words: dict[str, str], language: Language
) -> None:
    _room_for(pdf, 25)
    pdf.ln(2)
    _heading(pdf, words["anomalies"], 14, space_after=2)
    if not report.anomalies:
        _paragraph(pdf, words["no_anomaly"])
        return
    _paragraph(pdf, words["anomalies_intro"], size=9, colour=_MUTED)
    pdf.ln(1)
    accounts = {
        account.id: (brand, account) for brand in report.brands for account in brand.accounts
    }
    ordered = sorted(report.anomalies, key=lambda a: (a.day, a.metric, str(a.account_id)))
    for anomaly in ordered:
        _room_for(pdf, 10)
        pdf.set_fill_color(*_ALERT)
        pdf.rect(_MARGIN, pdf.get_y() + 1.6, 1.6, 1.6, style="F")
        pdf.set_x(_MARGIN + 4)
        pdf.set_font("helvetica", "", 9)
        pdf.set_text_color(*_TEXT)
        line = _anomaly_line(anomaly, accounts, words, language)
        pdf.multi_cell(_WIDTH - 4, 4.8, _text(line), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)


def render_report_pdf(report: ClientReport, *, timezone: str = "UTC") -> bytes:
    """The client's month as a PDF: summary, then each brand with its charts, accounts and top
    posts, then how the community was answered (when the report carries it), then the alerts.
    An empty month still gives a valid document that says there is no data. `timezone` is the
    agency's: the day a post went out is the day it was there."""
    language: Language = report.language
    words = _WORDS[language]
    first, _ = parse_month(report.month)
    period = month_name(first, language)
    title = f"{words['title']} — {period}"
    days = _month_days(report.month)

    pdf = _ReportPDF(f"{report.agency_name} — {report.client_name} — {period}", words["page"])
    # Windows-1252 has the em dash and curly quotes that Latin-1 lacks (see the module notes).
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(True, margin=_BOTTOM)
    pdf.set_title(f"{title} — {report.client_name}")
    pdf.set_author(report.agency_name)
    pdf.set_subject(title)
    pdf.set_lang(language)
    pdf.set_creation_date(_as_utc(report.generated_at))
    pdf.add_page()

    _heading(pdf, title, 18, space_after=2)
    _heading(pdf, report.client_name, 13, space_after=1)
    byline = (
        f"{words['prepared_by'].format(agency=report.agency_name)} · "
        f"{words['generated'].format(date=format_day(report.generated_at.date(), language))}"
    )
    _paragraph(pdf, byline, size=9, colour=_MUTED)
    pdf.ln(5)

    _heading(pdf, words["summary"], 14, space_after=2)
    _totals_grid(pdf, report.totals, words, language)
    every_account = [account for brand in report.brands for account in brand.accounts]
    if not _has_data(report.totals, every_account):
        _paragraph(pdf, words["no_data"])
        pdf.ln(3)
    zone = ZoneInfo(timezone)
    for brand in report.brands:
        _brand_section(pdf, brand, days, words, language, agency=report.agency_name, zone=zone)
    if report.community is not None:
        _community_section(pdf, report.community, report.agency_name, words, language)
    _anomalies_section(pdf, report, words, language)
    return bytes(pdf.output())


def _as_utc(moment: datetime) -> datetime:
    # fpdf2 writes the creation date with its offset; a naive time is taken as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
