"""Word-level differences between two revisions of a content item, pure.

Reviewers and clients compare revisions by reading them, so the diff works on words rather than
characters ("demain" -> "lundi" shows as one word replaced, not as a jumble of letters) and
keeps the exact text: joining the equal and deleted pieces gives back the old text, joining the
equal and inserted pieces gives back the new one, whitespace and punctuation included.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Literal

OpKind = Literal["equal", "insert", "delete"]

# A word (letters, digits, and combining accents so that a decomposed "é" stays inside its
# word), a run of whitespace, or a single punctuation mark. Python's str patterns are Unicode
# by default, so "événement" or "aujourd" is one \w+ token.
_TOKEN = re.compile(r"[\w\u0300-\u036f]+|\s+|[^\w\s]")

# Fields of a snapshot compared as plain values (shown old -> new when they differ).
_PLAIN_FIELDS = ("planned_at", "labels", "campaign")
_MEDIA_KEYS = ("url", "type", "alt_text")


@dataclass(frozen=True, slots=True)
class DiffOp:
    op: OpKind
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"op": self.op, "text": self.text}


def tokenize(text: str) -> list[str]:
    """Split into words, whitespace runs and punctuation marks; joining them gives `text`."""
    return _TOKEN.findall(text)


def word_diff(old: str, new: str) -> list[DiffOp]:
    """The edit from `old` to `new`, word by word.

    A replaced stretch comes out as its deletion followed by its insertion. Adjacent pieces of
    the same kind are merged, and a whitespace-only gap between two changes is folded into them
    so that "a b c" -> "x y z" reads as one deletion and one insertion rather than six pieces.
    """
    old_tokens, new_tokens = tokenize(old), tokenize(new)
    # autojunk would treat frequent tokens (spaces, "de", "the") as junk in texts of 200+
    # tokens and produce needlessly large changes.
    matcher = SequenceMatcher(a=old_tokens, b=new_tokens, autojunk=False)
    raw: list[DiffOp] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            raw.append(DiffOp("equal", "".join(old_tokens[i1:i2])))
            continue
        # "replace", "delete" and "insert": the old side (if any) goes before the new side.
        raw.append(DiffOp("delete", "".join(old_tokens[i1:i2])))
        raw.append(DiffOp("insert", "".join(new_tokens[j1:j2])))
    return _merge(_fold_whitespace_gaps(raw))


def _fold_whitespace_gaps(ops: list[DiffOp]) -> list[DiffOp]:
    """Turn an equal run of pure whitespace between two changes into a delete plus an insert.

    Both texts keep the whitespace (it is deleted and inserted back), so the invariants hold.
    """
    folded: list[DiffOp] = []
    for index, op in enumerate(ops):
        between_changes = (
            0 < index < len(ops) - 1
            and ops[index - 1].op != "equal"
            and ops[index + 1].op != "equal"
        )
        if op.op == "equal" and between_changes and op.text.isspace():
            folded += [DiffOp("delete", op.text), DiffOp("insert", op.text)]
        else:
            folded.append(op)
    return folded


def _merge(ops: Iterable[DiffOp]) -> list[DiffOp]:
    """Each stretch of changes becomes one delete then one insert; equal runs are joined."""
    merged: list[DiffOp] = []
    deleted: list[str] = []
    inserted: list[str] = []

    def flush_changes() -> None:
        if deleted:
            merged.append(DiffOp("delete", "".join(deleted)))
        if inserted:
            merged.append(DiffOp("insert", "".join(inserted)))
        deleted.clear()
        inserted.clear()

    for op in ops:
        if not op.text:
            continue
        if op.op == "delete":
            deleted.append(op.text)
        elif op.op == "insert":
            inserted.append(op.text)
        else:
            flush_changes()
            if merged and merged[-1].op == "equal":
                merged[-1] = DiffOp("equal", merged[-1].text + op.text)
            else:
                merged.append(op)
    flush_changes()
    return merged


def _ops_as_dicts(ops: Iterable[DiffOp]) -> list[dict[str, str]]:
    return [op.as_dict() for op in ops]


def revision_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """What changed between two revision snapshots, ready to serialize.

    Snapshots are `{"title", "variants": {platform: text}, "media": [{"url", "type",
    "alt_text"}], "planned_at", "labels", "campaign"}`; a missing key counts as empty.
    """
    return {
        "title": _ops_as_dicts(word_diff(old.get("title") or "", new.get("title") or "")),
        "variants": _variants_diff(old.get("variants") or {}, new.get("variants") or {}),
        "media": _media_diff(old.get("media") or [], new.get("media") or []),
        "fields": _fields_diff(old, new),
    }


def _variants_diff(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, Any]:
    # Old platforms in their order, then the new ones: stable output for the same inputs.
    platforms = list(old) + [platform for platform in new if platform not in old]
    result: dict[str, Any] = {}
    for platform in platforms:
        if platform not in new:
            change, ops = "removed", word_diff(old[platform], "")
        elif platform not in old:
            change, ops = "added", word_diff("", new[platform])
        else:
            ops = word_diff(old[platform], new[platform])
            change = "unchanged" if old[platform] == new[platform] else "changed"
        result[platform] = {"change": change, "ops": _ops_as_dicts(ops)}
    return result


def _media_key(item: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(item.get(key) for key in _MEDIA_KEYS)


def _media_diff(
    old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Media added and removed, comparing url, type and alt text together.

    A changed alt text therefore shows as the old item removed and the new one added, which is
    what a reviewer needs to see. Counted as multisets: the same image twice is two items.
    """
    return {
        "added": _missing_from(new, old),
        "removed": _missing_from(old, new),
    }


def _missing_from(
    items: Sequence[Mapping[str, Any]], other: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Items of `items` (in order) left over once those also in `other` are matched off."""
    available = Counter(_media_key(item) for item in other)
    missing: list[dict[str, Any]] = []
    for item in items:
        key = _media_key(item)
        if available[key] > 0:
            available[key] -= 1
        else:
            missing.append({name: item.get(name) for name in _MEDIA_KEYS})
    return missing


def _fields_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    fields: dict[str, dict[str, Any]] = {}
    for name in _PLAIN_FIELDS:
        old_value, new_value = _field_value(old, name), _field_value(new, name)
        if _comparable(name, old_value) != _comparable(name, new_value):
            fields[name] = {"old": old_value, "new": new_value}
    return fields


def _field_value(snapshot: Mapping[str, Any], name: str) -> Any:
    value = snapshot.get(name)
    if name == "labels":
        return list(value or [])
    return value


def _comparable(name: str, value: Any) -> Any:
    # Labels are a set to the user: reordering them is not a change worth showing.
    return sorted(value) if name == "labels" else value
