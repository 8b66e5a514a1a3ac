"""Word diff between revisions: what a reviewer sees when comparing two versions of a post.

The invariants (old = equal + delete, new = equal + insert) are checked on hand-picked pairs and
on seeded random pairs (hypothesis is not a dependency of the project).
"""

from __future__ import annotations

import itertools
import random

import pytest

from workflows.diff import DiffOp, revision_diff, tokenize, word_diff


def _old_side(ops: list[DiffOp]) -> str:
    return "".join(op.text for op in ops if op.op in ("equal", "delete"))


def _new_side(ops: list[DiffOp]) -> str:
    return "".join(op.text for op in ops if op.op in ("equal", "insert"))


def _ops(*pairs: tuple[str, str]) -> list[DiffOp]:
    return [DiffOp(op, text) for op, text in pairs]  # type: ignore[arg-type]


# --- readable examples -------------------------------------------------------------------------

EXAMPLES = [
    pytest.param(
        "Le lancement est demain",
        "Le lancement est reporté à lundi",
        _ops(("equal", "Le lancement est "), ("delete", "demain"), ("insert", "reporté à lundi")),
        id="fr-postponed",
    ),
    pytest.param(
        "Nouvelle collection dès lundi !",
        "Nouvelle collection dès mardi !",
        _ops(
            ("equal", "Nouvelle collection dès "),
            ("delete", "lundi"),
            ("insert", "mardi"),
            ("equal", " !"),
        ),
        id="fr-one-word-replaced",
    ),
    pytest.param(
        "Join us today",
        "Join us today at 5 pm",
        _ops(("equal", "Join us today"), ("insert", " at 5 pm")),
        id="en-appended",
    ),
    pytest.param(
        "Our big summer sale starts now",
        "Our summer sale starts now",
        _ops(("equal", "Our"), ("delete", " big"), ("equal", " summer sale starts now")),
        id="en-word-removed",
    ),
    pytest.param(
        "a b c",
        "x y z",
        _ops(("delete", "a b c"), ("insert", "x y z")),
        id="spaces-between-changes-folded",
    ),
    pytest.param(
        "L'événement",
        "L'évènement",
        _ops(("equal", "L'"), ("delete", "événement"), ("insert", "évènement")),
        id="accented-word-is-one-token",
    ),
    pytest.param("Même texte.", "Même texte.", _ops(("equal", "Même texte.")), id="unchanged"),
    pytest.param("", "Nouveau", _ops(("insert", "Nouveau")), id="from-empty"),
    pytest.param("Ancien", "", _ops(("delete", "Ancien")), id="to-empty"),
    pytest.param("", "", [], id="both-empty"),
]


@pytest.mark.parametrize(("old", "new", "expected"), EXAMPLES)
def test_word_diff_reads_word_by_word(old: str, new: str, expected: list[DiffOp]) -> None:
    assert word_diff(old, new) == expected


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        pytest.param(
            "L'équipe prépare aujourd'hui.",
            ["L", "'", "équipe", " ", "prépare", " ", "aujourd", "'", "hui", "."],
            id="fr-accents-and-apostrophes",
        ),
        pytest.param("e\u0301te\u0301", ["e\u0301te\u0301"], id="decomposed-accents-stay-inside"),
        pytest.param("a,  b\n", ["a", ",", "  ", "b", "\n"], id="whitespace-runs"),
    ],
)
def test_tokenize_keeps_words_whole(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens
    assert "".join(tokens) == text


def test_ops_serialize_as_plain_dicts() -> None:
    assert DiffOp("insert", "lundi").as_dict() == {"op": "insert", "text": "lundi"}


# --- invariants --------------------------------------------------------------------------------

INVARIANT_PAIRS = [
    pytest.param("Le lancement est demain", "Le lancement est reporté à lundi", id="fr"),
    pytest.param("Bonjour,\n\nà demain !", "Bonjour à tous,\n\nà lundi !!", id="newlines-punct"),
    pytest.param("the the the the", "the a the a the", id="repeated-words"),
    pytest.param("  leading", "trailing  ", id="edge-whitespace"),
    pytest.param("#promo @velo https://a.fr/x", "#promo2 @velo https://a.fr/y", id="tags-links"),
    pytest.param("🎉 Fête 🎉", "🎉🎉 Fête", id="emoji"),
    pytest.param("word " * 300, ("word " * 150) + "other " + ("word " * 150), id="long-autojunk"),
]

_VOCABULARY = [
    "le", "la", "événement", "aujourd'hui", "lundi", "the", "sale", "now", "!", ",", ".", "'",
    " ", "  ", "\n", "\t", "é", "🎉", "#promo", "@velo", "https://a.fr", "123", "_", "-",
]  # fmt: skip


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(_VOCABULARY) for _ in range(rng.randint(0, 30)))


def _random_pair(seed: int) -> tuple[str, str]:
    rng = random.Random(seed)
    old = _random_text(rng)
    # Half the time derive `new` from `old` so that the pair shares long stretches.
    if seed % 2:
        return old, _random_text(rng)
    words = tokenize(old)
    for _ in range(rng.randint(1, 4)):
        position = rng.randint(0, len(words))
        words[position : position + rng.randint(0, 2)] = [rng.choice(_VOCABULARY)]
    return old, "".join(words)


RANDOM_PAIRS = [pytest.param(*_random_pair(seed), id=f"seed-{seed}") for seed in range(200)]


@pytest.mark.parametrize(("old", "new"), INVARIANT_PAIRS + RANDOM_PAIRS)
def test_diff_rebuilds_both_texts_exactly(old: str, new: str) -> None:
    ops = word_diff(old, new)
    assert _old_side(ops) == old
    assert _new_side(ops) == new


@pytest.mark.parametrize(("old", "new"), INVARIANT_PAIRS + RANDOM_PAIRS)
def test_diff_is_merged_and_has_no_empty_pieces(old: str, new: str) -> None:
    ops = word_diff(old, new)
    assert all(op.text for op in ops)
    for before, after in itertools.pairwise(ops):
        assert before.op != after.op
        # Within a change, the deleted text comes before its replacement.
        assert (before.op, after.op) != ("insert", "delete")


# --- whole revisions ---------------------------------------------------------------------------

IMAGE = {"url": "https://cdn.example.com/a.jpg", "type": "image", "alt_text": "Un croissant"}
VIDEO = {"url": "https://cdn.example.com/b.mp4", "type": "video", "alt_text": ""}

OLD = {
    "title": "Lancement demain",
    "variants": {
        "instagram": "Le lancement est demain",
        "facebook": "Rendez-vous demain",
        "x": "Demain !",
    },
    "media": [IMAGE, VIDEO],
    "planned_at": "2026-11-23T14:00:00-05:00",
    "labels": ["lancement", "automne"],
    "campaign": "Automne 2026",
}
NEW = {
    "title": "Lancement reporté",
    "variants": {
        "instagram": "Le lancement est reporté à lundi",
        "x": "Demain !",
        "linkedin": "Nous reportons le lancement.",
    },
    "media": [VIDEO, {**IMAGE, "alt_text": "Deux croissants"}],
    "planned_at": "2026-11-24T14:00:00-05:00",
    "labels": ["automne", "lancement"],
    "campaign": "Automne 2026",
}


def test_revision_diff_shows_each_part_that_changed() -> None:
    diff = revision_diff(OLD, NEW)

    assert diff["title"] == [
        {"op": "equal", "text": "Lancement "},
        {"op": "delete", "text": "demain"},
        {"op": "insert", "text": "reporté"},
    ]
    assert diff["variants"] == {
        "instagram": {
            "change": "changed",
            "ops": [
                {"op": "equal", "text": "Le lancement est "},
                {"op": "delete", "text": "demain"},
                {"op": "insert", "text": "reporté à lundi"},
            ],
        },
        "facebook": {
            "change": "removed",
            "ops": [{"op": "delete", "text": "Rendez-vous demain"}],
        },
        "x": {"change": "unchanged", "ops": [{"op": "equal", "text": "Demain !"}]},
        "linkedin": {
            "change": "added",
            "ops": [{"op": "insert", "text": "Nous reportons le lancement."}],
        },
    }
    # Same image with a new description: shown as the old one removed and the new one added.
    # The video only moved, which is not a change.
    assert diff["media"] == {
        "added": [{**IMAGE, "alt_text": "Deux croissants"}],
        "removed": [IMAGE],
    }
    # Reordered labels and the same campaign are not changes.
    assert diff["fields"] == {
        "planned_at": {"old": "2026-11-23T14:00:00-05:00", "new": "2026-11-24T14:00:00-05:00"}
    }


@pytest.mark.parametrize(
    ("name", "old_value", "new_value"),
    [
        pytest.param("planned_at", None, "2026-12-01T09:00:00Z", id="planned-at-set"),
        pytest.param("planned_at", "2026-12-01T09:00:00Z", None, id="planned-at-cleared"),
        pytest.param("labels", ["noël"], ["noël", "promo"], id="label-added"),
        pytest.param("labels", ["noël"], [], id="labels-emptied"),
        pytest.param("campaign", None, "Noël 2026", id="campaign-set"),
        pytest.param("campaign", "Noël 2026", "Noël 2027", id="campaign-renamed"),
    ],
)
def test_revision_diff_reports_changed_fields(
    name: str, old_value: object, new_value: object
) -> None:
    base = {"title": "T", "variants": {}, "media": [], "planned_at": None, "labels": []}
    diff = revision_diff({**base, name: old_value}, {**base, name: new_value})
    assert diff["fields"] == {name: {"old": old_value, "new": new_value}}


def test_identical_revisions_have_no_changes() -> None:
    diff = revision_diff(OLD, OLD)
    assert diff["title"] == [{"op": "equal", "text": "Lancement demain"}]
    assert {v["change"] for v in diff["variants"].values()} == {"unchanged"}
    assert diff["media"] == {"added": [], "removed": []}
    assert diff["fields"] == {}


def test_the_same_image_twice_counts_twice() -> None:
    diff = revision_diff({"media": [IMAGE, IMAGE]}, {"media": [IMAGE]})
    assert diff["media"] == {"added": [], "removed": [IMAGE]}


def test_missing_keys_count_as_empty() -> None:
    diff = revision_diff({}, {"title": "Nouveau", "variants": {"x": "Salut"}, "labels": ["a"]})
    assert diff == {
        "title": [{"op": "insert", "text": "Nouveau"}],
        "variants": {"x": {"change": "added", "ops": [{"op": "insert", "text": "Salut"}]}},
        "media": {"added": [], "removed": []},
        "fields": {"labels": {"old": [], "new": ["a"]}},
    }
