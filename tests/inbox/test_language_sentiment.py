"""Language and sentiment of inbox items, measured on a labelled set of Québec French and English
messages (tests/inbox/data/messages.csv), plus the edge cases an inbox really receives."""

from __future__ import annotations

import csv
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from inbox import language as language_module
from inbox import sentiment as sentiment_module
from inbox.language import detect_language
from inbox.sentiment import Sentiment, sentiment

MESSAGES = Path(__file__).parent / "data" / "messages.csv"


def _labelled() -> list[dict[str, str]]:
    with MESSAGES.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_the_labelled_set_looks_like_an_inbox() -> None:
    rows = _labelled()
    languages = Counter(r["language"] for r in rows)
    sentiments = Counter(r["sentiment"] for r in rows)
    assert len(rows) >= 75
    assert set(languages) == {"fr", "en"} and min(languages.values()) >= 30
    assert set(sentiments) == {"negative", "neutral", "positive"}
    assert 0.2 <= sentiments["negative"] / len(rows) <= 0.35


def test_language_is_right_on_at_least_95_percent_of_the_labelled_set() -> None:
    rows = _labelled()
    misses = [
        (r["text"], r["language"], found)
        for r in rows
        if (found := detect_language(r["text"])) != r["language"]
    ]
    accuracy = 1 - len(misses) / len(rows)
    assert accuracy >= 0.95, f"language accuracy {accuracy:.1%} on {len(rows)}; misses: {misses}"


def test_sentiment_is_right_on_at_least_75_percent_of_the_labelled_set() -> None:
    rows = _labelled()
    misses = []
    for r in rows:
        found = sentiment(r["text"], r["language"])
        assert -1.0 <= found.score <= 1.0
        if found.label != r["sentiment"]:
            misses.append((r["text"], r["sentiment"], found.label, found.score))
    accuracy = 1 - len(misses) / len(rows)
    assert accuracy >= 0.75, f"sentiment accuracy {accuracy:.1%} on {len(rows)}; misses: {misses}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("   \n", None),
        ("👍👍👍", None),
        ("😡", None),
        ("ok", None),  # lingua alone calls it English with 87 % confidence
        ("k", None),
        ("12345 !!!", None),
        ("https://example.com/commande/123?ref=fb", None),
        ("www.example.com", None),
        ("@marie_tremblay", None),
        ("client@example.com", None),
        ("Merci beaucoup pour tout, à la prochaine!", "fr"),
        ("Thanks so much for everything, see you soon!", "en"),
        ("chu allée hier pis c'était vraiment bon", "fr"),
        ("Y'a tu encore des places pour jeudi?", "fr"),
        ("Worst service ever https://example.com/order/123", "en"),
        ("@marie_tremblay regarde ça, c'est le magasin dont je te parlais", "fr"),
        ("C'est vraiment nice, merci pour le cadeau", "fr"),  # an anglicism inside French
        ("Super service, thanks a lot for the quick reply", "en"),  # a French word inside English
        ("Pas pire", "fr"),
    ],
)
def test_language_edge_cases(text: str, expected: str | None) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    ("text", "language", "label"),
    [
        ("", None, "neutral"),
        ("   ", "fr", "neutral"),
        ("👍👍", None, "positive"),  # both libraries alone score it 0
        ("😡😡😡", None, "negative"),
        ("🤬", "fr", "negative"),
        ("❤️", None, "positive"),  # the heart followed by its variation selector
        ("Merci ❤️👍🏽", "fr", "positive"),  # a skin tone on the thumb
        ("https://example.com/promo", None, "neutral"),
        ("!!!", None, "neutral"),  # the French port alone makes bare punctuation negative
        ("Vous ouvrez quand?!", "fr", "neutral"),
        ("C'est plate, le produit a brisé", "fr", "negative"),
        ("Service poche", "fr", "negative"),
        ("Je suis en tabarnak", "fr", "negative"),
        ("chu ben content de ma commande", "fr", "positive"),
        ("Love it, merci!", None, "positive"),  # mixed, language unknown: both read it
        ("C'est une arnaque, je veux mon remboursement", None, "negative"),
        ("Worst service ever 😡", "en", "negative"),
        ("Not bad at all", "en", "positive"),
        ("Pas mauvais du tout", "fr", "positive"),
    ],
)
def test_sentiment_edge_cases(text: str, language: str | None, label: str) -> None:
    found = sentiment(text, language)
    assert isinstance(found, Sentiment)
    assert found.label == label, found
    assert (found.score > 0) == (label == "positive") and (found.score < 0) == (label == "negative")


def test_building_the_french_analyzer_leaves_the_import_path_alone() -> None:
    """The French port appends "/" to sys.path when imported: anything at the filesystem root
    would become importable by every later import in the worker."""
    assert "/" not in sys.path
    sys.modules.pop("vaderSentiment_fr.vaderSentiment", None)  # so that it runs again
    sentiment_module._french = None
    assert sentiment("Merci, c'est parfait", "fr").label == "positive"
    assert "/" not in sys.path


def test_first_use_from_many_threads_at_once() -> None:
    """The web server and the worker call these from thread pools: the first calls, racing to
    build the detector and the analyzers, all get the right answers."""
    language_module._detector = None
    sentiment_module._english = sentiment_module._french = None
    texts = ["Merci beaucoup, c'est parfait!", "Worst service ever, I want a refund"] * 16

    def both(text: str) -> tuple[str | None, str]:
        found = detect_language(text)
        return found, sentiment(text, found).label

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(both, texts))
    assert results == [("fr", "positive"), ("en", "negative")] * 16
