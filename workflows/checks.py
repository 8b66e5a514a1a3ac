"""Checks run on a content item before it is submitted for review, pure apart from the speller.

Each check returns warnings, never errors: the author decides what to fix. A warning says where
the problem is (platform variant and character offsets, or media index) so the editor can
highlight it, and for spelling offers a few suggestions.

Spelling uses Hunspell dictionaries through pyenchant, which loads the system libenchant-2;
`scripts/system-packages.sh` (run by `make install`) installs it with the French and US English
dictionaries.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from infra.i18n import language as language_of

WARNING_KINDS = ("banned_word", "too_long", "missing_alt_text", "broken_link", "spelling")

# Characters allowed per post. X counts differently: see `platform_length`.
PLATFORM_LIMITS: dict[str, int] = {
    "x": 280,
    "linkedin": 3000,
    "instagram": 2200,
    "facebook": 63206,
    "tiktok": 2200,
    "youtube": 5000,
    "threads": 500,
}
PLATFORM_NAMES = {
    "x": "X",
    "linkedin": "LinkedIn",
    "instagram": "Instagram",
    "facebook": "Facebook",
    "tiktok": "TikTok",
    "youtube": "YouTube",
    "threads": "Threads",
}
# X shortens every link with t.co, so each one costs this many characters whatever its length.
X_URL_LENGTH = 23

MAX_SUGGESTIONS = 3
_IMAGE_TYPES = frozenset({"image", "gif"})


@dataclass(frozen=True)
class CheckWarning:
    kind: str
    message: str
    platform: str | None = None
    start: int | None = None
    end: int | None = None
    media_index: int | None = None
    suggestions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def platform_name(platform: str) -> str:
    return PLATFORM_NAMES.get(platform, platform)


# --- links -------------------------------------------------------------------------------------

# Anything that looks like a link, well-formed or not: "http:" / "https:" followed by slashes
# (or none), "http//" / "https//" (the colon forgotten), or "www.". It runs to the next
# whitespace, which is how "https://exa mple.com" shows up broken as "https://exa".
_LINK_PATTERN = r"(?<![\w/.@-])(?:https?(?::/*|//)|www\.)\S*"
_LINK_CANDIDATE = re.compile(_LINK_PATTERN, re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?'\"»”’…"
_CLOSERS = {")": "(", "]": "[", "}": "{"}
# A DNS name of at least two labels whose last label looks like a TLD (letters, or punycode).
_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _Link:
    start: int
    end: int
    text: str
    problem: str | None  # None when the link is well formed


def find_links(text: str) -> list[_Link]:
    """Every link-like stretch of `text`, each with what is wrong with it (if anything)."""
    links = []
    for match in _LINK_CANDIDATE.finditer(text):
        candidate = _strip_trailing_punctuation(match.group())
        if not candidate:
            continue
        start = match.start()
        links.append(_Link(start, start + len(candidate), candidate, link_problem(candidate)))
    return links


def _strip_trailing_punctuation(candidate: str) -> str:
    """Drop sentence punctuation after a link ("voir https://a.fr." or "(https://a.fr)")."""
    while candidate and _ends_outside_link(candidate):
        candidate = candidate[:-1]
    return candidate


def _ends_outside_link(candidate: str) -> bool:
    last = candidate[-1]
    if last in _TRAILING_PUNCTUATION:
        return True
    # A closing bracket belongs to the link only when it closes one opened inside it, as in
    # Wikipedia's "https://fr.wikipedia.org/wiki/Montréal_(Québec)".
    opener = _CLOSERS.get(last)
    return opener is not None and candidate.count(last) > candidate.count(opener)


def link_problem(link: str) -> str | None:
    """Why `link` is not a valid http(s) URL to a public host name, or None if it is."""
    if link.lower().startswith("www."):
        link = "http://" + link
    scheme, separator, _ = link.partition(":")
    if not separator or scheme.lower() not in ("http", "https"):
        return f'"{link.split("/")[0]}" must be followed by "://"'
    if not link[len(scheme) :].startswith("://"):
        return f'"{scheme}:" must be followed by "//"'
    try:
        parts = urlsplit(link)
    except ValueError:  # an unbalanced "[" of an IPv6 address
        return "the address cannot be parsed"
    try:
        parts.port  # noqa: B018 -- reading the port is what validates it
    except ValueError:
        return "the port is not a number from 0 to 65535"
    hostname = parts.hostname or ""
    if not hostname:
        return "there is no host name after the scheme"
    if not _valid_host(hostname):
        return f'"{hostname}" is not a valid domain name'
    return None


def _valid_host(hostname: str) -> bool:
    try:
        # Accented names ("café.fr") are valid; the DNS sees their punycode form.
        ascii_host = hostname.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return _HOST.fullmatch(ascii_host) is not None


def check_links(platform: str, text: str) -> list[CheckWarning]:
    return [
        CheckWarning(
            kind="broken_link",
            message=f'Broken link "{link.text}" on {platform_name(platform)}: {link.problem}.',
            platform=platform,
            start=link.start,
            end=link.end,
        )
        for link in find_links(text)
        if link.problem is not None
    ]


# --- length ------------------------------------------------------------------------------------


class _Piece(NamedTuple):
    start: int
    end: int
    weight: int
    atomic: bool  # a link: counted as a whole, so it cannot be cut at the limit


def _character_weights(platform: str, text: str) -> list[_Piece]:
    """Pieces of `text` covering it in order, each with the characters the platform counts.

    Length is Python's len(), i.e. Unicode code points, except that on X each well-formed link
    weighs X_URL_LENGTH. X's other rules (CJK characters and emoji counting double, bare domains
    like "exemple.com" being linked too) are not modelled: the posts this serves are French and
    English text, where code points match what X counts.
    """
    if platform != "x":
        return [_Piece(0, len(text), len(text), atomic=False)]
    pieces: list[_Piece] = []
    position = 0
    for link in find_links(text):
        if link.problem is not None:
            continue
        pieces.append(_Piece(position, link.start, link.start - position, atomic=False))
        pieces.append(_Piece(link.start, link.end, X_URL_LENGTH, atomic=True))
        position = link.end
    pieces.append(_Piece(position, len(text), len(text) - position, atomic=False))
    return pieces


def platform_length(platform: str, text: str) -> int:
    """How many characters `platform` counts in `text`."""
    return sum(piece.weight for piece in _character_weights(platform, text))


def _overflow_start(platform: str, text: str, limit: int) -> int:
    """Offset of the first character past the limit (a link that crosses it starts there)."""
    used = 0
    for piece in _character_weights(platform, text):
        if used + piece.weight > limit:
            return piece.start if piece.atomic else piece.start + (limit - used)
        used += piece.weight
    return len(text)


def check_length(platform: str, text: str) -> list[CheckWarning]:
    limit = PLATFORM_LIMITS.get(platform)
    if limit is None:
        return []
    length = platform_length(platform, text)
    if length <= limit:
        return []
    return [
        CheckWarning(
            kind="too_long",
            message=(
                f"Too long for {platform_name(platform)}: {length} characters, "
                f"limit {limit} ({length - limit} over)."
            ),
            platform=platform,
            start=_overflow_start(platform, text, limit),
            end=len(text),
        )
    ]


# --- banned words ------------------------------------------------------------------------------


def _banned_pattern(phrase: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive, accent-sensitive; any whitespace between phrase words."""
    words = phrase.split()
    body = r"\s+".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _distinct_phrases(banned_words: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    phrases = []
    for phrase in banned_words:
        normalized = " ".join(phrase.split())
        if normalized and normalized.casefold() not in seen:
            seen.add(normalized.casefold())
            phrases.append(normalized)
    return phrases


def check_banned_words(platform: str, text: str, banned_words: Sequence[str]) -> list[CheckWarning]:
    warnings = []
    for phrase in _distinct_phrases(banned_words):
        for match in _banned_pattern(phrase).finditer(text):
            warnings.append(
                CheckWarning(
                    kind="banned_word",
                    message=(
                        f'Banned word "{match.group()}" on {platform_name(platform)} '
                        f'(brand list: "{phrase}").'
                    ),
                    platform=platform,
                    start=match.start(),
                    end=match.end(),
                )
            )
    return warnings


# --- media -------------------------------------------------------------------------------------


def check_alt_text(media: Sequence[Mapping[str, Any]]) -> list[CheckWarning]:
    """Images and GIFs need a description for screen-reader users; videos have captions."""
    warnings = []
    for index, item in enumerate(media):
        if item.get("type") not in _IMAGE_TYPES:
            continue
        if str(item.get("alt_text") or "").strip():
            continue
        noun = "GIF" if item.get("type") == "gif" else "Image"
        warnings.append(
            CheckWarning(
                kind="missing_alt_text",
                message=f"{noun} {index + 1} has no alt text.",
                media_index=index,
            )
        )
    return warnings


# --- spelling ----------------------------------------------------------------------------------

_ENCHANT_PACKAGES = "libenchant-2-2 hunspell-fr hunspell-en-us"
# Preferred dictionary first, then what else Debian's hunspell packages may have installed.
_DICTIONARIES = {
    "fr": ("fr_FR", "fr", "fr_CA", "fr_BE", "fr_CH", "fr_LU", "fr_MC"),
    "en": ("en_US", "en_GB", "en_CA", "en_AU", "en"),
}


def _load_enchant() -> Any:
    try:
        # No stubs. The project's mypy config ignores missing imports; plain mypy does not.
        import enchant  # type: ignore[import-untyped,unused-ignore]
    except ImportError as error:  # the module, or the libenchant-2 it loads, is missing
        raise RuntimeError(
            f"Spell checking needs pyenchant and the system packages {_ENCHANT_PACKAGES} "
            f"(run `make install`): {error}"
        ) from error
    return enchant


def _dictionary_tags(language: str) -> tuple[str, ...]:
    """Dictionary tags to try for a BCP 47 language ("fr-CA", "en", "fr_FR"), best first.

    The language's own region comes first when it has one, so a Quebec brand gets fr_CA if it is
    installed; otherwise fr_FR / en_US, then any other variant.
    """
    primary, _, region = language.replace("_", "-").partition("-")
    defaults = _DICTIONARIES.get(primary.lower(), ())
    if not defaults:
        return ()
    regional = (f"{primary.lower()}_{region.upper()}",) if region else ()
    return tuple(dict.fromkeys(regional + defaults))


class Speller:
    """A Hunspell dictionary, safe to share between threads.

    Enchant dictionary objects are not thread-safe, and one is shared per dictionary (loading
    the French one takes a noticeable fraction of a second), so every call takes a lock.
    """

    def __init__(self, tag: str) -> None:
        enchant = _load_enchant()
        try:
            self._dictionary = enchant.Dict(tag)
        except enchant.DictNotFoundError as error:
            raise RuntimeError(
                f"No {tag} spelling dictionary: install {_ENCHANT_PACKAGES} (run `make install`)"
            ) from error
        self.tag = tag
        self._lock = threading.Lock()

    @classmethod
    def for_language(cls, language: str) -> Speller | None:
        """The shared speller for `language`, or None when it is neither French nor English.

        Raises RuntimeError when pyenchant, libenchant-2 or every matching dictionary is
        missing: spelling must not be skipped silently on a badly installed machine.
        """
        tags = _dictionary_tags(language)
        if not tags:
            return None
        enchant = _load_enchant()
        # Enchant's broker, behind dict_exists and every Dict it makes, is one per process and
        # not thread-safe either: two requests' first checks, in two threads at once, corrupted
        # the heap (malloc_consolidate aborts of `passerelle serve` under concurrent load).
        with _BROKER_LOCK:
            for tag in tags:
                if enchant.dict_exists(tag):
                    return _speller_for(tag)
        raise RuntimeError(
            f"No spelling dictionary for {language!r} (tried {', '.join(tags)}): install "
            f"{_ENCHANT_PACKAGES} (run `make install`)"
        )

    def check(self, word: str) -> bool:
        with self._lock:
            return bool(self._dictionary.check(word))

    def suggest(self, word: str, limit: int = MAX_SUGGESTIONS) -> list[str]:
        with self._lock:
            suggestions = [str(s) for s in self._dictionary.suggest(word)]
        # Hunspell lists the word itself first when asked about a word it knows.
        return [s for s in dict.fromkeys(suggestions) if s != word][:limit]


_BROKER_LOCK = threading.Lock()


# One Speller (and so one loaded dictionary and one lock) per dictionary tag, for the process.
@functools.cache
def _speller_for(tag: str) -> Speller:
    return Speller(tag)


# A word: letters and digits, with apostrophes and hyphens inside ("aujourd'hui", "week-end").
_WORD = re.compile(r"\w+(?:['’-]\w+)*")
# Stretches never spell-checked: links (even broken ones), e-mail addresses, @mentions, #tags.
_NOT_PROSE = re.compile(
    _LINK_PATTERN + r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|[@#]\w[\w.]*",
    re.IGNORECASE,
)
# French elided articles and pronouns, checked apart from the word they are glued to.
_FRENCH_ELISION = re.compile(
    r"(?:l|d|qu|n|j|c|s|m|t|jusqu|lorsqu|puisqu|quoiqu)['’]", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class _Word:
    start: int
    text: str

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def _prose_words(text: str) -> Iterator[_Word]:
    """Words worth spell-checking: not in links, mentions, hashtags, nor numbers or acronyms."""
    skipped = [(m.start(), m.end()) for m in _NOT_PROSE.finditer(text)]
    for match in _WORD.finditer(text):
        word = match.group()
        if any(start < match.end() and match.start() < end for start, end in skipped):
            continue
        if len(word) < 2 or any(c.isdigit() or c == "_" for c in word) or word.isupper():
            continue
        yield _Word(match.start(), word)


def _misspelled_parts(word: _Word, known: Callable[[str], bool], french: bool) -> list[_Word]:
    """The parts of `word` to flag: none if the whole word is known.

    Otherwise a French elision is split off ("l'équipr" flags "équipr"). A hyphenated compound
    the dictionary does not list passes when each part is a word ("vélo-boulot"); if not, the
    whole compound is flagged, which lets Hunspell suggest "week-end" for "week-ennd" (its
    "week" alone is not a French word).
    """
    if known(word.text):
        return []
    if french and (elision := _FRENCH_ELISION.match(word.text)) and elision.end() < len(word.text):
        rest = _Word(word.start + elision.end(), word.text[elision.end() :])
        return _misspelled_parts(rest, known, french)
    if "-" in word.text and all(len(part) < 2 or known(part) for part in word.text.split("-")):
        return []
    return [word]


def check_spelling(
    platform: str,
    text: str,
    *,
    language: str,
    speller: Speller,
    allowed_words: Sequence[str] = (),
) -> list[CheckWarning]:
    allowed = {word.casefold() for word in allowed_words}

    def known(candidate: str) -> bool:
        return candidate.casefold() in allowed or speller.check(candidate)

    french = language_of(language) == "fr"
    warnings = []
    for word in _prose_words(text):
        for part in _misspelled_parts(word, known, french):
            warnings.append(
                CheckWarning(
                    kind="spelling",
                    message=f'Possible misspelling "{part.text}" on {platform_name(platform)}.',
                    platform=platform,
                    start=part.start,
                    end=part.end,
                    suggestions=speller.suggest(part.text),
                )
            )
    return warnings


# --- all checks --------------------------------------------------------------------------------


def _position(warning: CheckWarning) -> tuple[int, int, int]:
    start = warning.start if warning.start is not None else -1
    end = warning.end if warning.end is not None else -1
    return (start, end, WARNING_KINDS.index(warning.kind))


def run_checks(
    variants: Mapping[str, str],
    media: Sequence[Mapping[str, Any]],
    *,
    banned_words: Sequence[str],
    language: str,
    speller: Speller | None,
    allowed_words: Sequence[str] = (),
) -> list[CheckWarning]:
    """Every warning for a content item: per variant in the given order, sorted by position,
    then media. Spelling is skipped only when there is no speller for the brand's language.
    """
    warnings: list[CheckWarning] = []
    for platform, text in variants.items():
        found = [
            *check_length(platform, text),
            *check_banned_words(platform, text, banned_words),
            *check_links(platform, text),
        ]
        if speller is not None:
            found += check_spelling(
                platform, text, language=language, speller=speller, allowed_words=allowed_words
            )
        warnings += sorted(found, key=_position)
    warnings += check_alt_text(media)
    return warnings
