"""Saved replies and the check before a reply leaves, pure apart from the speller.

A saved reply is text with variables: "Bonjour {first_name}, merci de votre message! L'équipe
{brand}". `render` fills them in. It is deliberately not `str.format`: a template is written by
agency staff and stored, and `str.format` would let "{brand.__class__}" or "{items[0]}" reach
into the objects passed in; here a variable is a plain name, its value a plain string, and
anything else is an error naming what is wrong, which the API shows when the reply is saved.
Literal braces are written doubled, "{{" and "}}", as in Python.

`check_reply` runs the content checks of `workflows.checks` on a reply about to be sent: the
brand's banned words, the platform's length, broken links and spelling.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

from workflows.checks import (
    WARNING_KINDS,
    CheckWarning,
    Speller,
    check_banned_words,
    check_length,
    check_links,
    check_spelling,
)

VARIABLES: dict[str, str] = {
    "first_name": "The first name of the person answered, when their display name shows one",
    "name": "Their display name on the platform",
    "handle": "Their handle, with its @",
    "brand": "The brand's name",
    "agent_first_name": "The first name of the agency member replying",
    "agent_name": "The full name of the agency member replying",
}
"""The variables a saved reply may use, with what each holds (shown in the reply editor)."""

# "{{" and "}}" are literal braces; "{...}" with no brace inside is a variable; any other brace
# is unmatched.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _parts(template: str) -> Iterator[tuple[str, bool]]:
    """The template as (text, is_variable) pieces; ValueError on the first malformed brace."""
    position = 0
    for token in _TOKEN.finditer(template):
        if token.start() > position:
            yield template[position : token.start()], False
        position = token.end()
        raw = token.group()
        if raw in ("{{", "}}"):
            yield raw[0], False
        elif raw in ("{", "}"):
            raise ValueError(
                f"unmatched '{raw}' at character {token.start() + 1}: "
                f"write '{raw}{raw}' for a brace in the text"
            )
        else:
            name = token.group(1).strip()
            if not _NAME.fullmatch(name):
                raise ValueError(
                    f"{raw!r} at character {token.start() + 1} is not a variable: a variable is "
                    "a plain name in braces, like {first_name} (no dots, brackets or formats)"
                )
            yield name, True
    if position < len(template):
        yield template[position:], False


def variables_in(template: str) -> set[str]:
    """The variables `template` uses. Raises ValueError when a brace is malformed."""
    return {text for text, is_variable in _parts(template) if is_variable}


def _unknown(name: str, known: Sequence[str]) -> ValueError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f' (did you mean "{{{close[0]}}}"?)' if close else ""
    listed = ", ".join(f"{{{k}}}" for k in sorted(known)) or "none"
    return ValueError(f'unknown variable "{{{name}}}"{hint}; available: {listed}')


def validate(template: str) -> None:
    """Raise ValueError, naming the problem, unless `template` is well formed and uses only
    VARIABLES. For the API, when a saved reply is written."""
    for name in sorted(variables_in(template)):
        if name not in VARIABLES:
            raise _unknown(name, list(VARIABLES))


def render(template: str, variables: Mapping[str, str]) -> str:
    """`template` with each {variable} replaced by its value (inserted as is: a value with
    braces stays as written). Raises ValueError naming a variable absent from `variables`, or
    describing a malformed brace."""
    pieces = []
    for text, is_variable in _parts(template):
        if not is_variable:
            pieces.append(text)
        elif text in variables:
            pieces.append(variables[text])
        else:
            raise _unknown(text, list(variables))
    return "".join(pieces)


# --- first names ----------------------------------------------------------------------------------

# Courtesy titles that may open a display name, folded (no case, no accent, no final dot).
_FRENCH_TITLES = ("m", "mme", "mlle", "me", "dr", "dre", "pr", "madame", "monsieur", "mademoiselle")
_ENGLISH_TITLES = ("mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir")
_TITLES = frozenset(_FRENCH_TITLES + _ENGLISH_TITLES)
_MAX_FIRST_NAME = 30


def _bare(word: str) -> str:
    """A word without the emoji, quotes or punctuation around it ("✨Sophie✨" -> "Sophie")."""
    start, end = 0, len(word)
    while start < end and not word[start].isalpha():
        start += 1
    while end > start and not word[end - 1].isalpha():
        end -= 1
    return word[start:end]


def _folded(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def first_name(display_name: str | None) -> str:
    """The first name to greet someone by, from their display name on a platform, or "" when
    the name shows none (a handle, a shop's name is beyond guessing).

    "Marie-Ève Tremblay" -> "Marie-Ève"; "Tremblay, Marie" -> "Marie"; "Dr Jean Roy" -> "Jean";
    "Mme Gagnon" -> "" (a title then one word is a surname); "marie tremblay" -> "Marie";
    "✨ Sophie ✨" -> "Sophie"; "jdoe_1987", "@jdoe" -> "".
    """
    if not display_name:
        return ""
    # NFKC: full-width or stylised letters ("Ｍａｒｉｅ") are plain letters.
    name = unicodedata.normalize("NFKC", display_name).strip()
    # "Surname, First name", as some directories write it (but "Marie Roy, CPA" is not).
    if name.count(",") == 1:
        surname, given = (part.strip() for part in name.split(","))
        if len(surname.split()) == 1 and given:
            name = given
    # Each word as written and bare ("✨Sophie✨" -> "Sophie"); emoji alone are not words.
    words = [(word, _bare(word)) for word in name.split() if not word.startswith("@")]
    words = [(raw, bare) for raw, bare in words if bare]
    if words and _folded(words[0][1]) in _TITLES:
        words = words[1:]
        # "Mme Gagnon": the one word after a title is a surname, not a first name.
        if len(words) < 2:
            return ""
    if not words:
        return ""
    raw, candidate = words[0]
    # A user name ("jdoe_1987") is not a first name.
    if any(c.isdigit() or c == "_" for c in raw):
        return ""
    letters = candidate.replace("-", "").replace("'", "").replace("’", "")
    if not letters.isalpha() or len(letters) < 2 or len(candidate) > _MAX_FIRST_NAME:
        return ""
    # People often type their name in lower case or capitals; greet them properly. Mixed case
    # ("JP", "McKenzie", "DeShawn") is kept as written.
    if candidate.islower() or (candidate.isupper() and len(letters) > 2):
        candidate = candidate.title()  # each part: "jean-françois" -> "Jean-François"
    return candidate


# --- the check before sending ---------------------------------------------------------------------

CHECK_PLATFORMS: dict[str, str] = {
    "facebook_page": "facebook",
    "instagram_business": "instagram",
    "linkedin_organization": "linkedin",
}
"""Our account platforms by the names `workflows.checks` knows them (x, youtube, tiktok are the
same in both). The sandbox has no limit there, so a sandbox reply is not length-checked."""


def _position(warning: CheckWarning) -> tuple[int, int, int]:
    return (warning.start or 0, warning.end or 0, WARNING_KINDS.index(warning.kind))


def check_reply(
    text: str,
    *,
    platform: str,
    banned_words: Sequence[str],
    language: str,
    allowed_words: Sequence[str] = (),
) -> list[CheckWarning]:
    """Warnings on a reply about to be sent on an account of `platform` (our platform names:
    facebook_page, instagram_business, ...), in the order they appear in the text: the brand's
    banned words, too long for the platform, broken links, and spelling in `language` ("fr",
    "fr-CA", "en"; no spelling check for another language). `allowed_words` are not spelling
    mistakes: pass the brand's vocabulary and the name of the person answered, which no
    dictionary knows. Each warning's `platform` is the one given.

    The length limit is the platform's limit for posts; a platform that takes fewer characters
    in a comment refuses the reply when it is sent, with its reason.

    Raises RuntimeError when the dictionaries are not installed (see `workflows.checks`).
    """
    name = CHECK_PLATFORMS.get(platform, platform)
    found = [
        *check_length(name, text),
        *check_banned_words(name, text, banned_words),
        *check_links(name, text),
    ]
    speller = Speller.for_language(language)
    if speller is not None:
        found += check_spelling(
            name, text, language=language, speller=speller, allowed_words=allowed_words
        )
    return [replace(warning, platform=platform) for warning in sorted(found, key=_position)]
