"""Inbox rules, pure: what a brand's ordered rules do to an item when it arrives.

A brand keeps a short ordered list of rules ("a message that says *remboursement* goes to
Sophie, labelled billing, high priority"; "a comment from a troll on the watch list is hidden").
Each rule is a condition, every part of which must hold, and an action. On arrival the enabled
rules are tried in `position` order and the actions of those that match are combined:

- the assignee comes from the first matching rule that assigns (later ones cannot steal the
  item); "the brand's lead" is reported as a flag, since who that is lives in the directory;
- labels and people to notify are the union, in rule order, without repeats;
- the priority is the highest asked for; hide and mark done hold if any rule asks;
- a matching rule with `stop_processing` ends the evaluation (a rule that does nothing but stop
  is how a brand writes an exception: "never touch our VIP customers").

Keywords match whole words or phrases, ignoring case and accents, because the community writes
"REMBOURSEMENT", "remboursment" is a typo we do not chase, but "deception" for "déception" is
the same complaint typed on a phone. The condition and action models are the API's bodies.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, Field, model_validator

from social.connectors.types import InboxKind, Platform
from tenants.schemas import Strict
from workflows.checks import find_links

Language = Literal["fr", "en"]
SentimentLabel = Literal["negative", "neutral", "positive"]
Priority = Literal["low", "normal", "high", "urgent"]

PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "urgent")
"""Lowest first: when several rules set a priority, the highest wins."""

MAX_KEYWORDS = 50
MAX_KEYWORD_LENGTH = 100
MAX_LABELS = 20
MAX_LABEL_LENGTH = 40
MAX_NOTIFY = 20

_T = TypeVar("_T")


# --- text as rules see it -----------------------------------------------------------------------

# Letters NFKD does not decompose, and the apostrophes phones type, brought to what people mean.
_FOLDS = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "’": "'", "‘": "'", "ʼ": "'"})


def fold(text: str) -> str:
    """The form keywords are matched in: no case, no accents ("Crème BRÛLÉE" -> "creme
    brulee", "sœur" -> "soeur"), compatibility characters flattened (full-width letters)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLDS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@functools.lru_cache(maxsize=1024)
def _phrases_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex finding any of `phrases` as whole words in folded text, any whitespace between
    a phrase's words; None when there is no phrase to look for. Cached: a brand's rules are
    evaluated on every arrival with the same keywords."""
    bodies = []
    for phrase in phrases:
        words = fold(phrase).split()
        if words:
            bodies.append(r"\s+".join(re.escape(word) for word in words))
    if not bodies:
        return None
    # Longest first, so that the alternation never stops at a shorter phrase's prefix.
    bodies.sort(key=len, reverse=True)
    return re.compile(rf"(?<!\w)(?:{'|'.join(bodies)})(?!\w)")


def mentions_any(text: str, phrases: Iterable[str]) -> bool:
    """Whether `text` contains one of `phrases` as whole words, ignoring case and accents."""
    pattern = _phrases_pattern(tuple(phrases))
    return pattern is not None and pattern.search(fold(text)) is not None


def _watch_key(name: str) -> str:
    return name.strip().removeprefix("@").casefold()


def on_watch_list(author_id: str, author_handle: str | None, watch_list: Collection[str]) -> bool:
    """Whether an entry of `watch_list` names the author, by platform id or by handle, with or
    without its '@', in any case."""
    watched = {key for key in map(_watch_key, watch_list) if key}
    return _watch_key(author_id) in watched or (
        author_handle is not None and _watch_key(author_handle) in watched
    )


# --- the API's bodies -----------------------------------------------------------------------------


def _one_line(value: str) -> str:
    """Whitespace runs become one space; control characters are refused (PostgreSQL cannot store
    NUL, and a label is shown on one line)."""
    value = " ".join(value.split())
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise ValueError("must not contain control characters")
    if not value:
        raise ValueError("must not be blank")
    return value


def _distinct(values: list[_T]) -> list[_T]:
    """Repeats dropped, first kept: ["fr", "fr"] is a harmless slip, not worth a 422."""
    return list(dict.fromkeys(values))


def _distinct_text(values: list[str]) -> list[str]:
    """Repeats dropped ignoring case and accents, first spelling kept."""
    first: dict[str, str] = {}
    for value in values:
        first.setdefault(fold(value), value)
    return list(first.values())


Keyword = Annotated[str, Field(max_length=MAX_KEYWORD_LENGTH), AfterValidator(_one_line)]
Label = Annotated[str, Field(max_length=MAX_LABEL_LENGTH), AfterValidator(_one_line)]


class RuleCondition(Strict):
    """What an item must be for the rule to apply: every field given must hold (an empty
    condition matches every item). A list means "any of"."""

    keywords: Annotated[
        list[Keyword], Field(max_length=MAX_KEYWORDS), AfterValidator(_distinct_text)
    ] = Field(
        default_factory=list,
        description="Any of these words or phrases, whole words, ignoring case and accents",
    )
    never_use_words: bool = Field(
        default=False, description="The item contains one of the brand's never-use words"
    )
    kinds: Annotated[
        list[InboxKind], Field(max_length=len(InboxKind)), AfterValidator(_distinct)
    ] = Field(default_factory=list)
    platforms: Annotated[
        list[Platform], Field(max_length=len(Platform)), AfterValidator(_distinct)
    ] = Field(default_factory=list)
    languages: Annotated[list[Language], Field(max_length=2), AfterValidator(_distinct)] = Field(
        default_factory=list,
        description="Detected language; an item whose language is unknown matches none",
    )
    sentiments: Annotated[list[SentimentLabel], Field(max_length=3), AfterValidator(_distinct)] = (
        Field(default_factory=list, description="Detected sentiment")
    )
    contains_link: bool | None = Field(
        default=None, description="true: has a link; false: has none; null: either"
    )
    author_on_watch_list: bool | None = Field(
        default=None, description="true: author on the brand's watch list; false: not on it"
    )


class RuleAction(Strict):
    """What a matching rule does. User ids (members of the agency) are checked by the caller."""

    assign_to: uuid.UUID | None = Field(default=None, description="A user of the agency")
    assign_to_lead: bool = Field(default=False, description="Assign to the brand's lead")
    labels: Annotated[list[Label], Field(max_length=MAX_LABELS), AfterValidator(_distinct_text)] = (
        Field(default_factory=list)
    )
    priority: Priority | None = None
    hide: bool = Field(default=False, description="Hide the item on the platform")
    mark_done: bool = Field(default=False, description="Nothing to answer: status done")
    notify: Annotated[list[uuid.UUID], Field(max_length=MAX_NOTIFY), AfterValidator(_distinct)] = (
        Field(default_factory=list, description="Users of the agency to tell")
    )

    @model_validator(mode="after")
    def _one_assignee(self) -> RuleAction:
        if self.assign_to is not None and self.assign_to_lead:
            raise ValueError("assign_to and assign_to_lead cannot both be given: choose one")
        return self


# --- evaluation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemFacts:
    """What rules may look at in an arrived item."""

    text: str
    kind: str
    platform: str
    language: str | None
    """"fr", "en", or None when it could not be told."""
    sentiment: str | None
    """"negative", "neutral", "positive", or None when not analysed."""
    author_id: str
    author_handle: str | None = None


@dataclass(frozen=True)
class RuleSpec:
    id: uuid.UUID
    name: str
    position: int
    enabled: bool
    stop_processing: bool
    condition: RuleCondition
    action: RuleAction


@dataclass(frozen=True)
class Outcome:
    """The rules' combined verdict on one item. Empty (nothing matched) is `Outcome()`."""

    assign_to: uuid.UUID | None = None
    assign_to_lead: bool = False
    """The first rule that assigns chose the brand's lead: the caller resolves who that is."""
    labels: tuple[str, ...] = ()
    priority: Priority | None = None
    hide: bool = False
    mark_done: bool = False
    notify: tuple[uuid.UUID, ...] = ()
    matched: tuple[uuid.UUID, ...] = ()
    """Ids of the rules that matched, in the order they were applied (for the item's history)."""


def matches(
    condition: RuleCondition,
    facts: ItemFacts,
    *,
    never_use_words: Sequence[str],
    watch_list: Collection[str],
) -> bool:
    """Whether every part of `condition` holds for the item. Cheap tests first, text last."""
    if condition.kinds and facts.kind not in condition.kinds:
        return False
    if condition.platforms and facts.platform not in condition.platforms:
        return False
    if condition.languages and facts.language not in condition.languages:
        return False
    if condition.sentiments and facts.sentiment not in condition.sentiments:
        return False
    if condition.author_on_watch_list is not None and condition.author_on_watch_list != (
        on_watch_list(facts.author_id, facts.author_handle, watch_list)
    ):
        return False
    if condition.keywords and not mentions_any(facts.text, condition.keywords):
        return False
    # A brand without never-use words has nothing such a rule could find.
    if condition.never_use_words and not mentions_any(facts.text, never_use_words):
        return False
    return condition.contains_link is None or condition.contains_link == bool(
        find_links(facts.text)
    )


def evaluate(
    rules: Sequence[RuleSpec],
    facts: ItemFacts,
    *,
    never_use_words: Sequence[str],
    watch_list: Collection[str],
) -> Outcome:
    """Apply a brand's rules to an arrived item: enabled rules in `position` order (ties by id,
    i.e. by creation, ids being UUIDv7), combined as the module's docstring says."""
    assign_to: uuid.UUID | None = None
    assign_to_lead = False
    assigned = False
    labels: dict[str, str] = {}  # folded -> first spelling
    priority: Priority | None = None
    hide = mark_done = False
    notify: dict[uuid.UUID, None] = {}
    matched: list[uuid.UUID] = []
    for rule in sorted(rules, key=lambda r: (r.position, r.id)):
        if not rule.enabled or not matches(
            rule.condition, facts, never_use_words=never_use_words, watch_list=watch_list
        ):
            continue
        action = rule.action
        matched.append(rule.id)
        if not assigned and (action.assign_to is not None or action.assign_to_lead):
            assigned = True
            assign_to, assign_to_lead = action.assign_to, action.assign_to_lead
        for label in action.labels:
            labels.setdefault(fold(label), label)
        if action.priority is not None and (
            priority is None or PRIORITIES.index(action.priority) > PRIORITIES.index(priority)
        ):
            priority = action.priority
        hide = hide or action.hide
        mark_done = mark_done or action.mark_done
        notify.update(dict.fromkeys(action.notify))
        if rule.stop_processing:
            break
    return Outcome(
        assign_to=assign_to,
        assign_to_lead=assign_to_lead,
        labels=tuple(labels.values()),
        priority=priority,
        hide=hide,
        mark_done=mark_done,
        notify=tuple(notify),
        matched=tuple(matched),
    )
