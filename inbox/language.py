"""The language of an inbox item: French, English, or None when the text cannot say.

lingua-language-detector, restricted to French and English (the only languages the agencies
answer in): two candidates make it both faster and more accurate than a 75-language model on
the short, informal messages of an inbox. Its models (~95 MB for the two languages) load on the
first detection, not at import, so a process that never reads an item never pays for them.
"""

from __future__ import annotations

import re
import threading

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

MIN_LETTERS = 3
"""Below this many letters ("ok", "k", "👍") no detector can tell French from English: lingua
still picks one (it says "ok" is English with 87 % confidence), so we answer None ourselves."""

MIN_RELATIVE_DISTANCE = 0.1
"""lingua answers None when its two candidates are closer than this. 0.1 keeps short but telling
messages ("merci", "pas pire", "bonne journée") while leaving truly ambiguous ones ("lol",
"ok merci", "chu ben content") undecided; on the labelled set any value from 0 to 0.25 scores
the same, and higher values lose short French greetings."""

_NOT_LANGUAGE = re.compile(
    r"https?://\S+|www\.\S+|\S+@\S+\.\S+|@\w+",
    re.IGNORECASE,
)
"""Links, e-mail addresses and @handles are not written in any language: a message that is only
a link must not come out as English because of "https"."""

_CODES = {Language.FRENCH: "fr", Language.ENGLISH: "en"}

_detector: LanguageDetector | None = None
_lock = threading.Lock()


def _get_detector() -> LanguageDetector:
    global _detector
    if _detector is None:
        with _lock:
            # Several threads may arrive before the first build: build once.
            if _detector is None:
                _detector = (
                    LanguageDetectorBuilder.from_languages(Language.FRENCH, Language.ENGLISH)
                    .with_minimum_relative_distance(MIN_RELATIVE_DISTANCE)
                    .build()
                )
    return _detector


def detect_language(text: str) -> str | None:
    """ "fr", "en", or None when the text is too short, has no letters, or lingua is unsure."""
    cleaned = _NOT_LANGUAGE.sub(" ", text)
    if sum(ch.isalpha() for ch in cleaned) < MIN_LETTERS:
        return None
    found = _get_detector().detect_language_of(cleaned)
    return _CODES.get(found) if found is not None else None
