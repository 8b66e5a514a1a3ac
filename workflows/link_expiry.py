"""When an approval link expires, written for the person who receives it: in the client's
language and in the time zone of the brand the post is for, the zone named so that nobody has to
convert ("8 décembre 2026 à 17 h 00 (heure de Montréal)", "December 8, 2026 at 5:00 PM
(Montreal time)"). Pure."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from infra.i18n import MONTHS
from infra.i18n import language as language_of

_FRENCH_CITIES = {
    "Montreal": "Montréal",
    "St Johns": "Saint-Jean de Terre-Neuve",
    "Mexico City": "Mexico",
    "Port-au-Prince": "Port-au-Prince",
    "Brussels": "Bruxelles",
    "London": "Londres",
    "Lisbon": "Lisbonne",
    "Vienna": "Vienne",
    "Warsaw": "Varsovie",
    "Athens": "Athènes",
    "Copenhagen": "Copenhague",
    "Moscow": "Moscou",
    "Algiers": "Alger",
    "Reunion": "La Réunion",
    "Geneva": "Genève",
}


def _offset(moment: datetime) -> str:
    """'UTC', 'UTC-05:00', 'UTC+05:30'."""
    delta = moment.utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def zone_label(zone: str, local: datetime, language: str) -> str:
    """'heure de Montréal' / 'Montreal time' for a city's zone; the UTC offset otherwise."""
    area, _, city = zone.rpartition("/")
    if not area or area == "Etc" or not city:
        return _offset(local)
    name = city.replace("_", " ")
    if language == "fr":
        return f"heure de {_FRENCH_CITIES.get(name, name)}"
    return f"{name} time"


def expiry_moment(expires_at: datetime, locale: str, zone: str) -> str:
    """The local date, time and zone of `expires_at` (aware), as the client reads them. An
    unknown zone falls back to UTC, still named."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone, tz = "UTC", ZoneInfo("UTC")
    local = expires_at.astimezone(tz)
    language = language_of(locale)
    month = MONTHS[language][local.month - 1]
    where = zone_label(zone, local, language)
    if language == "fr":
        day = "1er" if local.day == 1 else str(local.day)
        return f"{day} {month} {local.year} à {local.hour} h {local.minute:02d} ({where})"
    hour = local.hour % 12 or 12
    noon = "AM" if local.hour < 12 else "PM"
    return f"{month} {local.day}, {local.year} at {hour}:{local.minute:02d} {noon} ({where})"
