"""The sentiment of an inbox item: negative, neutral or positive, with VADER's compound score.

English: vaderSentiment (Hutto & Gilbert's VADER, a lexicon and rules tuned for social media).
French: vaderSentiment-fr, the only French port of VADER on PyPI (a hand-translated lexicon of
~9,000 words and French emoji descriptions; no translation, no network). It is not actively
maintained (last release 2021) and its lexicon is France's French, so Québec's everyday words
of complaint and praise ("c'est plate", "service poche", "je suis en tabarnak") are added
below. Both run offline and in well under a millisecond per message once built; they are built
once, on first use, and shared (VADER's scoring only reads its lexicon).
"""

from __future__ import annotations

import re
import sys
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05
"""VADER's recommended cut-offs on the compound score. On the labelled set
(tests/inbox/data/messages.csv) ±0.05 labels 72/80 right, ±0.1 and ±0.15 74, ±0.2 71. Two
messages of a set we wrote ourselves are noise, not evidence, so we keep the published value.
The misses are questions holding a pleasant word ("prix", "free", "ouverts") and slang VADER
does not know ("ripoff"), which no threshold fixes."""

QUEBEC_LEXICON: dict[str, float] = {
    # Valences on VADER's -4..4 scale, keys without accents (the French port strips them before
    # looking a word up). Only words whose everyday Québec meaning is clear either way: not
    # "écœurant" (great in Montréal, disgusting in Paris) nor "malade" (awesome or sick).
    # "plate" (flat) and "poche" (pocket, bag) are also plain nouns and adjectives, but in a
    # message to a brand the Québec judgement is by far the likelier reading.
    "plate": -1.5,  # "c'est plate": boring, too bad
    "poche": -1.8,  # "service poche": lousy
    "tabarnak": -2.0,  # swearing: in a message to a brand, anger ("je suis en tabarnak")
    "tabarnac": -2.0,
    "tabarnaque": -2.0,
    "calisse": -2.0,
    "caliss": -2.0,
    "crisse": -1.8,
    "ostie": -1.5,
    "estie": -1.5,
    "arnaqueurs": -2.5,
    "content": 2.0,  # the port has "contente" and "contents" but lost the masculine singular
    "impeccable": 2.5,
    "nice": 1.8,  # anglicisms as used in French ("c'est nice", "trop cute")
    "cute": 1.5,
}


EMOJI_VALENCE: dict[str, float] = {
    # Both analyzers turn an emoji into its name and score the name's words, which misses most
    # of the emoji people put in comments: "👍", "😡", "🤬", "👎", "🙏", "💩" score 0 in both
    # languages. These are scored directly instead. "🔥" is praise in social comments ("fire"
    # gives it VADER's -0.34); "😭" is as often laughter as grief, hence a mild value.
    "👍": 2.0,
    "👏": 2.0,
    "🙏": 1.5,
    "👌": 1.8,
    "💯": 2.0,
    "🔥": 1.8,
    "💪": 1.5,
    "✨": 1.0,
    "🎉": 2.0,
    "🥳": 2.5,
    "❤": 2.5,
    "💕": 2.5,
    "💖": 2.5,
    "💙": 2.0,
    "💚": 2.0,
    "💛": 2.0,
    "💜": 2.0,
    "🧡": 2.0,
    "😍": 3.0,
    "🥰": 3.0,
    "🤩": 2.5,
    "😊": 2.0,
    "😃": 2.0,
    "😄": 2.0,
    "😁": 2.0,
    "😀": 2.0,
    "😎": 1.5,
    "😂": 1.5,
    "🤣": 1.5,
    "👎": -2.0,
    "😡": -3.0,
    "🤬": -3.5,
    "😠": -2.5,
    "😤": -2.0,
    "😞": -2.0,
    "😒": -1.8,
    "🙄": -1.8,
    "😢": -2.0,
    "😭": -1.0,
    "😩": -1.8,
    "😫": -1.8,
    "😑": -1.0,
    "💩": -2.0,
    "🤮": -3.0,
    "🤢": -2.5,
    "💔": -2.5,
}

_EMOJI_PADDING = re.compile("([" + "".join(EMOJI_VALENCE) + "])")
_EMOJI_MODIFIERS = re.compile("[\ufe0f\ufe0e\U0001f3fb-\U0001f3ff]")
"""Variation selectors and skin tones: "❤️" is "❤" followed by U+FE0F, and VADER would read the
selector as part of the word after the emoji's name."""


class _Analyzer(Protocol):
    def polarity_scores(self, text: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Sentiment:
    label: str
    """negative | neutral | positive"""
    score: float
    """VADER's compound score, -1 (most negative) to 1 (most positive)."""


NEUTRAL = Sentiment(label="neutral", score=0.0)

_english: _Analyzer | None = None
_french: _Analyzer | None = None
_lock = threading.Lock()


def _build_english() -> _Analyzer:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    _score_emoji(analyzer)
    built: _Analyzer = analyzer
    return built


def _build_french() -> _Analyzer:
    # The port appends "/" to sys.path at import (a leftover of its authors' setup) and imports
    # fuzzywuzzy, which warns that python-Levenshtein is missing; the fuzzy matching it would
    # speed up is only used by polarity_scores_max, which we do not call. Undo the first,
    # silence the second.
    root_was_there = "/" in sys.path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from vaderSentiment_fr.vaderSentiment import SentimentIntensityAnalyzer
    if not root_was_there and "/" in sys.path:
        sys.path.remove("/")
    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(QUEBEC_LEXICON)
    _score_emoji(analyzer)
    built: _Analyzer = analyzer
    return built


def _score_emoji(analyzer: Any) -> None:
    """Both analyzers replace an emoji by `emojis[emoji]` before reading words: make that a
    token of our own, and give the token its valence."""
    for emoji, valence in EMOJI_VALENCE.items():
        token = f"emoji{ord(emoji):x}"
        analyzer.emojis[emoji] = token
        analyzer.lexicon[token] = valence


def _analyzers() -> tuple[_Analyzer, _Analyzer]:
    global _english, _french
    if _english is None or _french is None:
        with _lock:
            if _english is None:
                _english = _build_english()
            if _french is None:
                _french = _build_french()
    return _english, _french


def _label(score: float) -> str:
    if score >= POSITIVE_THRESHOLD:
        return "positive"
    if score <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def sentiment(text: str, language: str | None) -> Sentiment:
    """The sentiment of `text` in `language` ("fr", "en"; None when the language is unknown).

    Unknown language (a mixed message, a bare emoji): both analyzers read it and the more
    decided one wins, since each only scores the words and emoji of its own lexicon.
    """
    if not text.strip():
        return NEUTRAL
    english, french = _analyzers()
    text = _EMOJI_PADDING.sub(r" \1 ", _EMOJI_MODIFIERS.sub("", text))
    if language == "en":
        score = _compound(english, text)
    elif language == "fr":
        score = _compound(french, text)
    else:
        score = max((_compound(english, text), _compound(french, text)), key=abs)
    return Sentiment(label=_label(score), score=score)


def _compound(analyzer: _Analyzer, text: str) -> float:
    scores = analyzer.polarity_scores(text)
    if not scores["pos"] and not scores["neg"]:
        # No word or emoji carried any sentiment. The French port then still subtracts half
        # its punctuation emphasis (VADER does not), which would make "Vous ouvrez quand?!"
        # or "!!!" negative.
        return 0.0
    return float(scores["compound"])
