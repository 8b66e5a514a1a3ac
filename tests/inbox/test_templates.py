"""Saved replies: variables filled in, malformed or hostile templates refused with a message
naming the problem, first names taken from display names, and the check before a reply is sent
(banned words, the platform's length, broken links, spelling with the real dictionaries)."""

from __future__ import annotations

import pytest

from inbox.templates import VARIABLES, check_reply, first_name, render, validate, variables_in
from workflows.checks import CheckWarning

VALUES = {
    "first_name": "Marie-Ève",
    "name": "Marie-Ève Tremblay",
    "handle": "@marieve",
    "brand": "Café Lumière",
    "agent_first_name": "Sophie",
    "agent_name": "Sophie Gagnon",
}

RENDER_CASES = [
    # (name, template, expected)
    ("plain text", "Merci!", "Merci!"),
    ("empty", "", ""),
    (
        "French reply",
        "Bonjour {first_name}, merci de votre message! — {agent_first_name}, équipe {brand}",
        "Bonjour Marie-Ève, merci de votre message! — Sophie, équipe Café Lumière",
    ),
    ("English reply", "Hi {first_name}! {brand} here.", "Hi Marie-Ève! Café Lumière here."),
    ("a variable twice", "{brand} ❤️ {brand}", "Café Lumière ❤️ Café Lumière"),
    ("variables side by side", "{first_name}{handle}", "Marie-Ève@marieve"),
    ("spaces inside the braces", "Allo { first_name }!", "Allo Marie-Ève!"),
    ("doubled braces are literal", "{{first_name}} is {first_name}", "{first_name} is Marie-Ève"),
    ("a lone doubled brace", "emoji {{ :) }}", "emoji { :) }"),
]


@pytest.mark.parametrize(
    ("template", "expected"),
    [case[1:] for case in RENDER_CASES],
    ids=[case[0] for case in RENDER_CASES],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, VALUES) == expected


def test_values_are_inserted_as_written() -> None:
    # A value with braces (a display name can hold anything) is not read as a template.
    assert render("Bonjour {name}", {"name": "{brand.__class__} {{x}}"}) == (
        "Bonjour {brand.__class__} {{x}}"
    )


BAD_TEMPLATES = [
    # (name, template, words of the error)
    (
        "unknown variable, with a suggestion",
        "Bonjour {firstname}",
        'unknown variable "{firstname}" (did you mean "{first_name}"?)',
    ),
    ("unknown variable, French name", "Bonjour {prenom}", 'unknown variable "{prenom}"'),
    (
        "attribute access",
        "{brand.__class__.__init__}",
        "'{brand.__class__.__init__}' at character 1 is not a variable",
    ),
    ("index access", "{brand[0]}", "is not a variable"),
    ("conversion", "{brand!r}", "is not a variable"),
    ("format spec", "{brand:>50}", "is not a variable"),
    ("nested format spec", "{brand:{first_name}}", "unmatched '{' at character 1"),
    ("positional field", "{0}", "is not a variable"),
    ("empty braces", "Merci {}", "'{}' at character 7 is not a variable"),
    ("unclosed brace", "Bonjour {first_name", "unmatched '{' at character 9: write '{{'"),
    ("lone closing brace", "Bonjour :}", "unmatched '}' at character 10: write '}}'"),
    ("brace inside a variable", "{first{name}}", "unmatched '{' at character 1"),
]


@pytest.mark.parametrize(
    ("template", "message"),
    [case[1:] for case in BAD_TEMPLATES],
    ids=[case[0] for case in BAD_TEMPLATES],
)
def test_bad_templates_are_refused_naming_the_problem(template: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        render(template, VALUES)
    assert message in str(raised.value)
    with pytest.raises(ValueError):
        validate(template)


def test_the_available_variables_are_listed_when_one_is_missing() -> None:
    with pytest.raises(ValueError, match=r"available: \{brand\}, \{first_name\}$"):
        render("{first_name} {agent_name}", {"first_name": "Marie", "brand": "Lumière"})


def test_variables_in() -> None:
    template = "Bonjour {first_name}, {{brand}} {agent_first_name} {first_name}"
    assert variables_in(template) == {"first_name", "agent_first_name"}
    assert variables_in("Merci!") == set()
    with pytest.raises(ValueError, match="unmatched"):
        variables_in("Merci {")


def test_validate_accepts_the_documented_variables_only() -> None:
    validate(" ".join(f"{{{name}}}" for name in VARIABLES))
    validate("Merci {{beaucoup}}")
    with pytest.raises(ValueError, match=r'unknown variable "\{client\}"'):
        validate("{first_name} {client}")


FIRST_NAMES = [
    # (display name, first name)
    ("Marie-Ève Tremblay", "Marie-Ève"),
    ("Sophie", "Sophie"),
    ("Jean-François Côté", "Jean-François"),
    ("Tremblay, Marie", "Marie"),
    ("Marie Roy, CPA", "Marie"),
    ("Dr. Jean Roy", "Jean"),
    ("Mme Gagnon", ""),
    ("M. Côté", ""),
    ("marie tremblay", "Marie"),
    ("jean-françois", "Jean-François"),
    ("MARIE TREMBLAY", "Marie"),
    ("JP Tremblay", "JP"),
    ("McKenzie Bouchard", "McKenzie"),
    ("o'neil", "O'Neil"),
    ("✨ Sophie ✨", "Sophie"),
    ("Sophie🌸 Lavoie", "Sophie"),
    ("Ｍａｒｉｅ Roy", "Marie"),
    ("@jdoe", ""),
    ("jdoe_1987", ""),
    ("Marie2 Roy", ""),
    ("J. Doe", ""),
    ("🌸🌸", ""),
    ("   ", ""),
    ("", ""),
    (None, ""),
]


@pytest.mark.parametrize(("display_name", "expected"), FIRST_NAMES, ids=repr)
def test_first_name(display_name: str | None, expected: str) -> None:
    assert first_name(display_name) == expected


# --- the check before sending ------------------------------------------------------------------


def kinds(warnings: list[CheckWarning]) -> list[tuple[str, str | None]]:
    return [(w.kind, w.platform) for w in warnings]


def test_a_clean_french_reply_has_no_warning() -> None:
    text = "Bonjour Marie-Ève, merci pour votre message! Nous vous répondons en privé."
    warnings = check_reply(
        text,
        platform="facebook_page",
        banned_words=["pas cher"],
        language="fr-CA",
        allowed_words=["Marie-Ève"],
    )
    assert warnings == []


def test_a_clean_english_reply_has_no_warning() -> None:
    text = "Hi Marie, thanks for reaching out! We will get back to you shortly."
    assert check_reply(text, platform="instagram_business", banned_words=[], language="en") == []


def test_every_problem_is_reported_in_text_order_with_our_platform_name() -> None:
    text = "Bonjour, merci pour vottre message! Voir https//lumiere.ca, c'est pas cher."
    warnings = check_reply(text, platform="facebook_page", banned_words=["pas cher"], language="fr")
    assert kinds(warnings) == [
        ("spelling", "facebook_page"),
        ("broken_link", "facebook_page"),
        ("banned_word", "facebook_page"),
    ]
    spelling, link, banned = warnings
    assert text[spelling.start : spelling.end] == "vottre"
    assert "votre" in spelling.suggestions
    assert text[link.start : link.end] == "https//lumiere.ca"
    assert text[banned.start : banned.end] == "pas cher"
    # Messages name the platform as people know it.
    assert "on Facebook" in banned.message


LENGTH_CASES = [
    # (platform, characters allowed)
    ("x", 280),
    ("instagram_business", 2200),
    ("linkedin_organization", 3000),
    ("tiktok", 2200),
    ("youtube", 5000),
    ("facebook_page", 63206),
]


@pytest.mark.parametrize(("platform", "limit"), LENGTH_CASES)
def test_length_uses_the_platform_limit(platform: str, limit: int) -> None:
    # "yes " repeated: real words, so only the length can be wrong.
    def reply(length: int) -> str:
        return ("yes " * length)[:length]

    assert check_reply(reply(limit), platform=platform, banned_words=[], language="en") == []
    (too_long,) = check_reply(reply(limit + 1), platform=platform, banned_words=[], language="en")
    assert (too_long.kind, too_long.platform, too_long.start) == ("too_long", platform, limit)
    assert "1 over" in too_long.message


def test_x_counts_a_link_as_23_characters() -> None:
    text = "Merci! Détails: https://lumiere.ca/" + "a" * 300
    assert check_reply(text, platform="x", banned_words=[], language="fr") == []


def test_the_sandbox_has_no_length_limit() -> None:
    assert check_reply("yes " * 30_000, platform="sandbox", banned_words=[], language="en") == []


def test_no_spelling_check_in_another_language() -> None:
    assert check_reply("Muchas grácias amigo", platform="x", banned_words=[], language="es") == []


def test_the_answered_person_s_name_can_be_allowed() -> None:
    text = "Bonjour Kassandre, merci!"
    flagged = check_reply(text, platform="x", banned_words=[], language="fr")
    assert [text[w.start : w.end] for w in flagged if w.start is not None] == ["Kassandre"]
    allowed = check_reply(
        text, platform="x", banned_words=[], language="fr", allowed_words=["Kassandre"]
    )
    assert allowed == []
