"""Inbox rules, pure: which conditions match an arrived item, how the actions of several matching
rules combine (order, first assignee, union of labels, highest priority, stop), and the clear
422-style errors the API's bodies give for bad input."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from inbox.rules import (
    ItemFacts,
    Outcome,
    RuleAction,
    RuleCondition,
    RuleSpec,
    evaluate,
    fold,
    matches,
)

SOPHIE = uuid.UUID("01938a00-0000-7000-8000-00000000a001")
MARC = uuid.UUID("01938a00-0000-7000-8000-00000000a002")
LEA = uuid.UUID("01938a00-0000-7000-8000-00000000a003")

NEVER_USE = ("pas cher", "low-cost")
WATCH = ("@TrollDu514", "1789")


def item(text: str = "Bonjour!", **changes: Any) -> ItemFacts:
    facts: dict[str, Any] = {
        "text": text,
        "kind": "comment",
        "platform": "instagram_business",
        "language": "fr",
        "sentiment": "neutral",
        "author_id": "4242",
        "author_handle": "marie.tremblay",
    }
    facts.update(changes)
    return ItemFacts(**facts)


def condition_matches(condition: dict[str, Any], facts: ItemFacts) -> bool:
    return matches(
        RuleCondition.model_validate(condition),
        facts,
        never_use_words=NEVER_USE,
        watch_list=WATCH,
    )


MATCH_CASES = [
    # (name, condition, item, matches?)
    ("empty condition matches everything", {}, item(), True),
    ("keyword, same case", {"keywords": ["remboursement"]}, item("Je veux un remboursement"), True),
    ("keyword, shouting", {"keywords": ["remboursement"]}, item("REMBOURSEMENT SVP"), True),
    (
        "keyword without accent matches accented text",
        {"keywords": ["deception"]},
        item("Quelle déception!"),
        True,
    ),
    (
        "accented keyword matches text typed without accents",
        {"keywords": ["déçu"]},
        item("tellement decu"),
        True,
    ),
    ("keyword with œ matches oe", {"keywords": ["œuvre"]}, item("une belle oeuvre"), True),
    (
        "keyword is a whole word, not a piece",
        {"keywords": ["nul"]},
        item("nullement inquiet"),
        False,
    ),
    ("keyword after an elision", {"keywords": ["arnaque"]}, item("c'est une arnaque!!"), True),
    ("keyword as a hashtag", {"keywords": ["boycott"]}, item("#boycott #honte"), True),
    (
        "phrase with other spacing",
        {"keywords": ["service client"]},
        item("Votre SERVICE\n  client est absent"),
        True,
    ),
    (
        "phrase words apart do not match",
        {"keywords": ["service client"]},
        item("le service de ce client"),
        False,
    ),
    (
        "phrase with a curly apostrophe",
        {"keywords": ["c'est plate"]},
        item("C’est plate en maudit"),
        True,
    ),
    (
        "any of the keywords",
        {"keywords": ["refund", "remboursement"]},
        item("I want a refund"),
        True,
    ),
    ("none of the keywords", {"keywords": ["refund", "remboursement"]}, item("Love it"), False),
    ("keyword with regex characters is literal", {"keywords": ["a+b"]}, item("aab"), False),
    ("never-use word present", {"never_use_words": True}, item("C'est PAS CHER du tout"), True),
    ("never-use word with a hyphen", {"never_use_words": True}, item("a low-cost brand"), True),
    ("never-use word absent", {"never_use_words": True}, item("C'est cher"), False),
    ("kind in list", {"kinds": ["message", "comment"]}, item(), True),
    ("kind not in list", {"kinds": ["review"]}, item(), False),
    ("platform in list", {"platforms": ["instagram_business"]}, item(), True),
    ("platform not in list", {"platforms": ["x", "youtube"]}, item(), False),
    ("language in list", {"languages": ["fr"]}, item(), True),
    ("language not in list", {"languages": ["en"]}, item(), False),
    (
        "unknown language matches no language list",
        {"languages": ["fr", "en"]},
        item(language=None),
        False,
    ),
    ("sentiment in list", {"sentiments": ["negative"]}, item(sentiment="negative"), True),
    ("sentiment not in list", {"sentiments": ["negative"]}, item(sentiment="positive"), False),
    (
        "unanalysed sentiment matches no sentiment list",
        {"sentiments": ["neutral"]},
        item(sentiment=None),
        False,
    ),
    (
        "contains a link",
        {"contains_link": True},
        item("promo ici https://spam.example.com/x"),
        True,
    ),
    ("contains a www link", {"contains_link": True}, item("va voir www.exemple.ca"), True),
    ("contains no link but asked for one", {"contains_link": True}, item("aucun lien"), False),
    ("asked for no link, has one", {"contains_link": False}, item("http://a.ca"), False),
    ("asked for no link, has none", {"contains_link": False}, item("merci"), True),
    (
        "watch list by handle, '@' and case ignored",
        {"author_on_watch_list": True},
        item(author_handle="trolldu514"),
        True,
    ),
    (
        "watch list by platform id",
        {"author_on_watch_list": True},
        item(author_id="1789", author_handle=None),
        True,
    ),
    ("author not on the watch list", {"author_on_watch_list": True}, item(), False),
    ("asked for authors off the watch list", {"author_on_watch_list": False}, item(), True),
    (
        "asked for authors off the watch list, author on it",
        {"author_on_watch_list": False},
        item(author_handle="@TROLLDU514"),
        False,
    ),
    (
        "every part must hold: all do",
        {"keywords": ["remboursement"], "kinds": ["comment"], "sentiments": ["negative"]},
        item("remboursement!", sentiment="negative"),
        True,
    ),
    (
        "every part must hold: one fails",
        {"keywords": ["remboursement"], "kinds": ["message"]},
        item("remboursement!"),
        False,
    ),
]


@pytest.mark.parametrize(
    ("condition", "facts", "expected"),
    [case[1:] for case in MATCH_CASES],
    ids=[case[0] for case in MATCH_CASES],
)
def test_condition(condition: dict[str, Any], facts: ItemFacts, expected: bool) -> None:
    assert condition_matches(condition, facts) is expected


def test_a_brand_without_never_use_words_matches_no_never_use_rule() -> None:
    condition = RuleCondition(never_use_words=True)
    assert not matches(condition, item("pas cher"), never_use_words=(), watch_list=())
    assert not matches(condition, item("pas cher"), never_use_words=("  ",), watch_list=())


def test_blank_watch_list_entries_match_nobody() -> None:
    condition = RuleCondition(author_on_watch_list=True)
    assert not matches(condition, item(author_handle=""), never_use_words=(), watch_list=("@", " "))


def test_fold() -> None:
    assert fold("Crème BRÛLÉE") == "creme brulee"
    assert fold("Sœur Ｍａｒｉｅ") == "soeur marie"


# --- evaluation: several rules ------------------------------------------------------------------


def rule(
    position: int,
    condition: dict[str, Any] | None = None,
    *,
    enabled: bool = True,
    stop: bool = False,
    name: str | None = None,
    **action: Any,
) -> RuleSpec:
    return RuleSpec(
        id=uuid.UUID(int=position + 1),
        name=name or f"rule {position}",
        position=position,
        enabled=enabled,
        stop_processing=stop,
        condition=RuleCondition.model_validate(condition or {}),
        action=RuleAction.model_validate(action),
    )


def run(rules: list[RuleSpec], facts: ItemFacts) -> Outcome:
    return evaluate(rules, facts, never_use_words=NEVER_USE, watch_list=WATCH)


def ids(*positions: int) -> tuple[uuid.UUID, ...]:
    return tuple(uuid.UUID(int=p + 1) for p in positions)


REFUND = {"keywords": ["remboursement", "refund"]}
NEGATIVE = {"sentiments": ["negative"]}
TROLL = {"author_on_watch_list": True}

EVALUATE_CASES = [
    # (name, rules, item, expected outcome)
    ("no rules, nothing happens", [], item(), Outcome()),
    ("no rule matches", [rule(0, REFUND, assign_to=str(SOPHIE))], item("allo"), Outcome()),
    (
        "one rule: assignee, labels, priority, notify",
        [
            rule(
                0,
                REFUND,
                assign_to=str(SOPHIE),
                labels=["facturation"],
                priority="high",
                notify=[str(MARC)],
            )
        ],
        item("Remboursement svp"),
        Outcome(
            assign_to=SOPHIE,
            labels=("facturation",),
            priority="high",
            notify=(MARC,),
            matched=ids(0),
        ),
    ),
    (
        "the first rule that assigns wins, in position order not list order",
        [rule(5, NEGATIVE, assign_to=str(MARC)), rule(1, REFUND, assign_to=str(SOPHIE))],
        item("refund now", sentiment="negative"),
        Outcome(assign_to=SOPHIE, matched=ids(1, 5)),
    ),
    (
        "a rule that does not assign does not block a later one",
        [rule(0, REFUND, labels=["facturation"]), rule(1, NEGATIVE, assign_to_lead=True)],
        item("refund now", sentiment="negative"),
        Outcome(assign_to_lead=True, labels=("facturation",), matched=ids(0, 1)),
    ),
    (
        "the lead, chosen first, is not replaced by a later person",
        [rule(0, NEGATIVE, assign_to_lead=True), rule(1, REFUND, assign_to=str(SOPHIE))],
        item("refund now", sentiment="negative"),
        Outcome(assign_to_lead=True, matched=ids(0, 1)),
    ),
    (
        "labels are a union in rule order, repeats (any case or accent) dropped",
        [
            rule(0, REFUND, labels=["Facturation", "urgent"]),
            rule(1, NEGATIVE, labels=["plainte", "facturation", "Urgent"]),
        ],
        item("refund", sentiment="negative"),
        Outcome(labels=("Facturation", "urgent", "plainte"), matched=ids(0, 1)),
    ),
    (
        "the highest priority wins whatever the order",
        [
            rule(0, REFUND, priority="urgent"),
            rule(1, NEGATIVE, priority="low"),
            rule(2, {}, priority="high"),
        ],
        item("refund", sentiment="negative"),
        Outcome(priority="urgent", matched=ids(0, 1, 2)),
    ),
    (
        "hide and mark done hold if any rule asks; notify is a union",
        [
            rule(0, TROLL, hide=True, notify=[str(MARC), str(LEA)]),
            rule(1, {}, mark_done=True, notify=[str(LEA), str(SOPHIE)]),
        ],
        item("lol", author_handle="TrollDu514"),
        Outcome(hide=True, mark_done=True, notify=(MARC, LEA, SOPHIE), matched=ids(0, 1)),
    ),
    (
        "a disabled rule is skipped",
        [
            rule(0, REFUND, enabled=False, assign_to=str(SOPHIE)),
            rule(1, REFUND, assign_to=str(MARC)),
        ],
        item("refund"),
        Outcome(assign_to=MARC, matched=ids(1)),
    ),
    (
        "stop processing ends the evaluation when its rule matches",
        [rule(0, REFUND, stop=True, labels=["facturation"]), rule(1, {}, assign_to=str(MARC))],
        item("refund"),
        Outcome(labels=("facturation",), matched=ids(0)),
    ),
    (
        "stop processing does nothing when its rule does not match",
        [rule(0, REFUND, stop=True, labels=["facturation"]), rule(1, {}, assign_to=str(MARC))],
        item("merci"),
        Outcome(assign_to=MARC, matched=ids(1)),
    ),
    (
        "an exception: a rule that only stops shields VIPs from the rules below",
        [rule(0, {"author_on_watch_list": True}, stop=True), rule(1, NEGATIVE, hide=True)],
        item("bof", author_id="1789", sentiment="negative"),
        Outcome(matched=ids(0)),
    ),
]


@pytest.mark.parametrize(
    ("rules", "facts", "expected"),
    [case[1:] for case in EVALUATE_CASES],
    ids=[case[0] for case in EVALUATE_CASES],
)
def test_evaluate(rules: list[RuleSpec], facts: ItemFacts, expected: Outcome) -> None:
    assert run(rules, facts) == expected


def test_equal_positions_keep_creation_order() -> None:
    older, newer = uuid.UUID(int=1), uuid.UUID(int=2)

    def spec(rule_id: uuid.UUID, who: uuid.UUID) -> RuleSpec:
        return RuleSpec(
            rule_id, "same place", 3, True, False, RuleCondition(), RuleAction(assign_to=who)
        )

    outcome = run([spec(newer, MARC), spec(older, SOPHIE)], item())
    assert (outcome.assign_to, outcome.matched) == (SOPHIE, (older, newer))


# --- the API's bodies: bad input ----------------------------------------------------------------

BAD_BODIES = [
    # (name, model, body, field in error, words of the message)
    ("unknown field", RuleCondition, {"keyword": ["x"]}, "keyword", "Extra inputs"),
    (
        "too many keywords",
        RuleCondition,
        {"keywords": [f"k{n}" for n in range(51)]},
        "keywords",
        "at most 50",
    ),
    ("blank keyword", RuleCondition, {"keywords": ["ok", "   "]}, "keywords.1", "blank"),
    ("keyword too long", RuleCondition, {"keywords": ["x" * 101]}, "keywords.0", "at most 100"),
    (
        "keyword with NUL",
        RuleCondition,
        {"keywords": ["a\x00b"]},
        "keywords.0",
        "control characters",
    ),
    ("unknown kind", RuleCondition, {"kinds": ["tweet"]}, "kinds.0", "comment"),
    ("unknown platform", RuleCondition, {"platforms": ["myspace"]}, "platforms.0", "facebook_page"),
    ("unknown language", RuleCondition, {"languages": ["es"]}, "languages.0", "'fr' or 'en'"),
    ("unknown sentiment", RuleCondition, {"sentiments": ["angry"]}, "sentiments.0", "negative"),
    ("string for a yes/no", RuleCondition, {"contains_link": "yes"}, "contains_link", "boolean"),
    ("number for a yes/no", RuleCondition, {"never_use_words": 1}, "never_use_words", "boolean"),
    (
        "keywords not a list",
        RuleCondition,
        {"keywords": "remboursement"},
        "keywords",
        "valid array",
    ),
    ("unknown action", RuleAction, {"delete": True}, "delete", "Extra inputs"),
    ("label too long", RuleAction, {"labels": ["x" * 41]}, "labels.0", "at most 40"),
    (
        "too many labels",
        RuleAction,
        {"labels": [f"l{n}" for n in range(21)]},
        "labels",
        "at most 20",
    ),
    ("blank label", RuleAction, {"labels": [""]}, "labels.0", "blank"),
    ("unknown priority", RuleAction, {"priority": "critical"}, "priority", "urgent"),
    ("assignee not an id", RuleAction, {"assign_to": "sophie"}, "assign_to", "UUID"),
    ("notify not ids", RuleAction, {"notify": ["marc"]}, "notify.0", "UUID"),
    (
        "too many to notify",
        RuleAction,
        {"notify": [str(uuid.UUID(int=n)) for n in range(21)]},
        "notify",
        "at most 20",
    ),
    (
        "a person and the lead",
        RuleAction,
        {"assign_to": str(SOPHIE), "assign_to_lead": True},
        "",
        "choose one",
    ),
]


@pytest.mark.parametrize(
    ("model", "body", "field", "message"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_bad_bodies_are_refused_clearly(
    model: type[RuleCondition | RuleAction], body: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate_json(json.dumps(body))
    errors = raised.value.errors()
    assert [".".join(map(str, e["loc"])) for e in errors] == [field]
    assert message in errors[0]["msg"]


def test_bodies_are_tidied() -> None:
    condition = RuleCondition.model_validate(
        {
            "keywords": ["  Service   client ", "service CLIENT", "Déçu", "decu"],
            "kinds": ["comment", "comment", "message"],
            "languages": ["fr", "fr"],
        }
    )
    assert condition.keywords == ["Service client", "Déçu"]
    assert condition.kinds == ["comment", "message"]
    assert condition.languages == ["fr"]
    action = RuleAction.model_validate(
        {"labels": [" VIP ", "vip"], "notify": [str(MARC), str(MARC)]}
    )
    assert (action.labels, action.notify) == (["VIP"], [MARC])
    # Emoji, accents and punctuation are fine in keywords and labels.
    assert RuleCondition(keywords=["🤬", "c'est nul!"]).keywords == ["🤬", "c'est nul!"]
    assert RuleAction(labels=["Crise 🔥"]).labels == ["Crise 🔥"]


def test_an_emoji_keyword_matches() -> None:
    assert condition_matches({"keywords": ["🤬"]}, item("Encore en retard 🤬🤬"))
