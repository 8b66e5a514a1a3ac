"""Checks before submission: what the author sees highlighted in the editor.

Spelling runs against the real Hunspell dictionaries (hunspell-fr, hunspell-en-us), installed
by `make install` through scripts/system-packages.sh.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from workflows.checks import CheckWarning, Speller, find_links, platform_length, run_checks


@pytest.fixture(scope="module")
def fr() -> Speller:
    speller = Speller.for_language("fr")
    assert speller is not None
    return speller


@pytest.fixture(scope="module")
def en() -> Speller:
    speller = Speller.for_language("en")
    assert speller is not None
    return speller


def _check(
    text: str,
    *,
    platform: str = "instagram",
    banned: list[str] | None = None,
    language: str = "fr",
    speller: Speller | None = None,
    allowed: list[str] | None = None,
) -> list[CheckWarning]:
    return run_checks(
        {platform: text},
        [],
        banned_words=banned or [],
        language=language,
        speller=speller,
        allowed_words=allowed or [],
    )


def _spans(warnings: list[CheckWarning], kind: str) -> list[tuple[int | None, int | None]]:
    return [(w.start, w.end) for w in warnings if w.kind == kind]


# --- spelling ----------------------------------------------------------------------------------


def test_misspelled_french_word_is_flagged_with_its_position_and_a_fix(fr: Speller) -> None:
    text = "Nouvelle publicatoin demain"
    [warning] = _check(text, speller=fr)
    assert warning.kind == "spelling"
    assert (warning.start, warning.end) == (9, 20)
    assert text[warning.start : warning.end] == "publicatoin"
    assert warning.suggestions[0] == "publication"
    assert len(warning.suggestions) <= 3
    assert warning.platform == "instagram"
    assert warning.message == 'Possible misspelling "publicatoin" on Instagram.'


def test_misspelled_english_word_is_flagged_with_its_position_and_a_fix(en: Speller) -> None:
    text = "You will recieve it tomorrow."
    [warning] = _check(text, language="en", speller=en, platform="linkedin")
    assert (warning.kind, warning.start, warning.end) == ("spelling", 9, 16)
    assert warning.suggestions[0] == "receive"
    assert "LinkedIn" in warning.message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("L'équipe prépare aujourd'hui un événement", id="accents-and-elisions"),
        pytest.param("L’équipe prépare aujourd’hui un événement", id="typographic-apostrophe"),
        pytest.param("Qu'en pensez-vous ? C'est jusqu'à lundi.", id="more-elisions"),
        pytest.param("Peut-être un week-end à Montréal.", id="hyphenated"),
        pytest.param("Ça, c'est l'été : crème glacée et vélo-boulot !", id="new-compound"),
        pytest.param("ÉVÉNEMENT À NE PAS MANQUER", id="all-caps"),
    ],
)
def test_correct_french_is_not_flagged(fr: Speller, text: str) -> None:
    assert _check(text, speller=fr) == []


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Don't miss our summer sale, it's today!", id="contractions"),
        pytest.param("Receive a well-known e-mail.", id="hyphenated"),
    ],
)
def test_correct_english_is_not_flagged(en: Speller, text: str) -> None:
    assert _check(text, language="en", speller=en) == []


@pytest.mark.parametrize(
    ("text", "word", "start", "suggestion"),
    [
        pytest.param("Bienvenue à l'équipr", "équipr", 14, "équipe", id="after-elision"),
        pytest.param("Bon week-ennd !", "week-ennd", 4, "week-end", id="whole-compound"),
        pytest.param("À lundi, publicatoin", "publicatoin", 9, "publication", id="after-comma"),
    ],
)
def test_french_misspelling_positions(
    fr: Speller, text: str, word: str, start: int, suggestion: str
) -> None:
    [warning] = _check(text, speller=fr)
    assert (warning.start, warning.end) == (start, start + len(word))
    assert text[start : start + len(word)] == word
    assert suggestion in warning.suggestions


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Voir https://exemple.com/publicatoin", id="url"),
        pytest.param("Voir www.exemple.com/publicatoin", id="www-url"),
        pytest.param("Voir https//exemple.com/publicatoin", id="broken-url"),
        pytest.param("Merci @publicatoin_officielle", id="mention"),
        pytest.param("#publicatoin #Événementxyz", id="hashtags"),
        pytest.param("Écrivez à publicatoin@exemple.com", id="email"),
        pytest.param("Le 3e rendez-vous, 10h30, COVID-19", id="numbers"),
        pytest.param("Chez BOULANGIX", id="all-caps"),
    ],
)
def test_spelling_skips_what_is_not_prose(fr: Speller, text: str) -> None:
    assert _spans(_check(text, speller=fr), "spelling") == []


def test_brand_allowed_words_are_not_flagged(fr: Speller) -> None:
    text = "Boulangix et Vélocix vous attendent"
    assert _spans(_check(text, speller=fr), "spelling") == [(0, 9), (13, 20)]
    assert _check(text, speller=fr, allowed=["boulangix", "Vélocix"]) == []


def test_without_a_speller_spelling_is_not_checked() -> None:
    assert _check("Nouvelle publicatoin", speller=None) == []


@pytest.mark.parametrize(
    ("language", "tag"),
    [
        pytest.param("fr", "fr_FR", id="fr"),
        pytest.param("fr-FR", "fr_FR", id="fr-FR"),
        pytest.param("fr-CA", "fr_CA", id="fr-CA-regional"),
        pytest.param("fr_BE", "fr_BE", id="fr_BE-underscore"),
        pytest.param("en", "en_US", id="en"),
        pytest.param("en-US", "en_US", id="en-US"),
        pytest.param("en-GB", "en_US", id="en-GB-not-installed-falls-back"),
    ],
)
def test_speller_for_language_picks_an_installed_dictionary(language: str, tag: str) -> None:
    speller = Speller.for_language(language)
    assert speller is not None
    assert speller.tag == tag


@pytest.mark.parametrize("language", ["de", "es-MX", "", "français"])
def test_no_speller_for_other_languages(language: str) -> None:
    assert Speller.for_language(language) is None


def test_spellers_are_shared_per_dictionary() -> None:
    assert Speller.for_language("fr") is Speller.for_language("fr-FR")
    assert Speller.for_language("fr") is not Speller.for_language("fr-CA")


def test_a_missing_dictionary_is_an_error_not_a_silent_skip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import enchant  # type: ignore[import-untyped,unused-ignore]

    monkeypatch.setattr(enchant, "dict_exists", lambda tag: False)
    with pytest.raises(RuntimeError, match=r"hunspell-fr.*make install"):
        Speller.for_language("fr-CH")


def test_a_missing_pyenchant_is_an_error_not_a_silent_skip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "enchant", None)  # makes `import enchant` fail
    with pytest.raises(RuntimeError, match=r"pyenchant.*libenchant-2-2"):
        Speller.for_language("en")
    assert Speller.for_language("de") is None  # no dictionary needed, so no error


def test_one_speller_serves_many_threads(fr: Speller) -> None:
    words = ["publication", "publicatoin", "événement", "evenemnt"] * 50
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fr.check, words))
        suggestions = list(pool.map(fr.suggest, ["publicatoin"] * 4))
    assert results == [True, False, True, False] * 50
    assert all(s[0] == "publication" for s in suggestions)


# --- banned words ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "banned", "found"),
    [
        pytest.param(
            "Livraison gratuite ? Non : gratuit, vraiment Gratuit !",
            ["gratuit"],
            [(27, 34, "gratuit"), (45, 52, "Gratuit")],
            id="fr-repeated-any-case-whole-word",
        ),
        pytest.param(
            "Le meilleur  prix du\nMEILLEUR PRIX",
            ["meilleur prix"],
            [(3, 17, "meilleur  prix"), (21, 34, "MEILLEUR PRIX")],
            id="fr-phrase-across-whitespace",
        ),
        pytest.param(
            "Une démarche ethique, vraiment éthique.",
            ["éthique"],
            [(31, 38, "éthique")],
            id="fr-accent-sensitive",
        ),
        pytest.param(
            "ÉTHIQUE avant tout",
            ["éthique"],
            [(0, 7, "ÉTHIQUE")],
            id="fr-accented-capitals",
        ),
        pytest.param(
            "Cheap deals! Not so cheap. CLICK HERE now, cheaper later.",
            ["cheap", "click here"],
            [(0, 5, "Cheap"), (20, 25, "cheap"), (27, 37, "CLICK HERE")],
            id="en-word-and-phrase-not-cheaper",
        ),
        pytest.param("#promo du jour", ["promo"], [(1, 6, "promo")], id="inside-a-hashtag"),
        pytest.param("Promotion et promos", ["promo"], [], id="not-inside-longer-words"),
        pytest.param("gratuit", ["Gratuit", "gratuit", "  "], [(0, 7, "gratuit")], id="deduped"),
    ],
)
def test_banned_words_are_found_at_every_occurrence(
    text: str, banned: list[str], found: list[tuple[int, int, str]]
) -> None:
    warnings = [w for w in _check(text, banned=banned) if w.kind == "banned_word"]
    assert [(w.start, w.end, text[w.start : w.end]) for w in warnings] == found


def test_banned_word_message_names_the_word_and_platform() -> None:
    [warning] = _check("C'est gratuit", banned=["gratuit"], platform="facebook")
    assert warning.message == 'Banned word "gratuit" on Facebook (brand list: "gratuit").'
    assert warning.platform == "facebook"


# --- length ------------------------------------------------------------------------------------

LIMITS = [
    pytest.param("x", "X", 280, id="x"),
    pytest.param("linkedin", "LinkedIn", 3000, id="linkedin"),
    pytest.param("instagram", "Instagram", 2200, id="instagram"),
    pytest.param("facebook", "Facebook", 63206, id="facebook"),
    pytest.param("tiktok", "TikTok", 2200, id="tiktok"),
    pytest.param("youtube", "YouTube", 5000, id="youtube"),
    pytest.param("threads", "Threads", 500, id="threads"),
]


@pytest.mark.parametrize(("platform", "name", "limit"), LIMITS)
def test_text_at_the_limit_passes(platform: str, name: str, limit: int) -> None:
    assert _check("a" * limit, platform=platform) == []


@pytest.mark.parametrize(("platform", "name", "limit"), LIMITS)
def test_one_character_over_the_limit_warns(platform: str, name: str, limit: int) -> None:
    [warning] = _check("a" * (limit + 1), platform=platform)
    assert warning.kind == "too_long"
    assert warning.message == (
        f"Too long for {name}: {limit + 1} characters, limit {limit} (1 over)."
    )
    # The part past the limit is what the editor highlights.
    assert (warning.platform, warning.start, warning.end) == (platform, limit, limit + 1)


def test_unknown_platforms_have_no_limit() -> None:
    assert _check("a" * 100_000, platform="mastodon") == []


def test_accented_letters_count_once() -> None:
    assert _check("é" * 280, platform="x") == []


LONG_URL = "https://www.boulangerie-saint-laurent.ca/nouveautes/croissant-aux-amandes"
SHORT_URL = "https://a.fr"


@pytest.mark.parametrize(
    ("text", "counted", "overflow_start"),
    [
        # 256 letters + a space + a link: 257 + 23 = 280, although len() is far more.
        pytest.param("a" * 256 + " " + LONG_URL, 280, None, id="long-link-fits"),
        # One more letter and the link crosses the limit: it is highlighted from its start.
        pytest.param("a" * 257 + " " + LONG_URL, 281, 258, id="long-link-over"),
        # A short link costs 23 too.
        pytest.param("a" * 257 + " " + SHORT_URL, 281, 258, id="short-link-costs-23"),
        # 241 + 23 + 17 = 281: the last "b" (offset 269) is the one over.
        pytest.param("a" * 240 + " " + SHORT_URL + " " + "b" * 16, 281, 269, id="text-after-link"),
        pytest.param(LONG_URL + " " + LONG_URL, 47, None, id="two-links"),
        # X does not turn a broken link into t.co, so it counts as written.
        pytest.param("a" * 260 + " https//a.fr/x" + "b" * 7, 281, 280, id="broken-link-as-text"),
    ],
)
def test_x_counts_each_link_as_23_characters(
    text: str, counted: int, overflow_start: int | None
) -> None:
    assert platform_length("x", text) == counted
    warnings = [w for w in _check(text, platform="x") if w.kind == "too_long"]
    if overflow_start is None:
        assert warnings == []
    else:
        [warning] = warnings
        assert f"{counted} characters, limit 280" in warning.message
        assert (warning.start, warning.end) == (overflow_start, len(text))


def test_links_count_as_written_on_other_platforms() -> None:
    assert platform_length("threads", "a" * 256 + " " + LONG_URL) == 257 + len(LONG_URL)


# --- alt text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media", "expected"),
    [
        pytest.param([{"type": "image", "alt_text": "Un croissant doré"}], [], id="described"),
        pytest.param(
            [{"type": "image", "alt_text": ""}], [(0, "Image 1 has no alt text.")], id="empty"
        ),
        pytest.param(
            [{"type": "image", "alt_text": " \n"}], [(0, "Image 1 has no alt text.")], id="blank"
        ),
        pytest.param(
            [{"type": "image", "alt_text": None}], [(0, "Image 1 has no alt text.")], id="null"
        ),
        pytest.param([{"type": "image"}], [(0, "Image 1 has no alt text.")], id="absent"),
        pytest.param(
            [{"type": "video", "alt_text": ""}, {"type": "gif", "alt_text": ""}],
            [(1, "GIF 2 has no alt text.")],
            id="gif-yes-video-no",
        ),
        pytest.param(
            [
                {"type": "image", "alt_text": ""},
                {"type": "image", "alt_text": "Vélos"},
                {"type": "image", "alt_text": ""},
            ],
            [(0, "Image 1 has no alt text."), (2, "Image 3 has no alt text.")],
            id="several",
        ),
    ],
)
def test_images_need_alt_text(media: list[dict[str, str]], expected: list[tuple[int, str]]) -> None:
    warnings = run_checks({}, media, banned_words=[], language="fr", speller=None)
    assert [(w.media_index, w.message) for w in warnings] == expected
    assert all(w.kind == "missing_alt_text" and w.platform is None for w in warnings)


# --- links -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Voir https://example.com", id="https"),
        pytest.param("Voir http://example.com/menu?jour=lundi#pain", id="path-query-fragment"),
        pytest.param("Voir www.example.com", id="www"),
        pytest.param("Voir WWW.Example.COM/Menu", id="capitals"),
        pytest.param("Voir https://www.boulangerie-saint-laurent.ca/menu", id="hyphens"),
        pytest.param("Voir https://café.fr/menu", id="accented-host"),
        pytest.param("Voir https://xn--caf-dma.fr", id="punycode-host"),
        pytest.param("Voir https://example.com:8443/x", id="port"),
        pytest.param("(voir https://example.com).", id="closing-punctuation"),
        pytest.param("Voir https://fr.wikipedia.org/wiki/Laval_(Québec).", id="parens-in-url"),
        pytest.param("Le protocole https est sûr", id="bare-word-https"),
    ],
)
def test_good_links_are_not_flagged(text: str) -> None:
    assert _check(text) == []


@pytest.mark.parametrize(
    ("link", "flagged", "problem"),
    [
        pytest.param("https://exa mple.com", "https://exa", '"exa" is not a valid', id="space"),
        pytest.param("https//example.com", "https//example.com", '"https" must be', id="colon"),
        pytest.param("http:/example.com", "http:/example.com", '"http:" must be', id="one-slash"),
        pytest.param("https:example.com", "https:example.com", '"https:" must be', id="no-slash"),
        pytest.param("http://", "http://", "no host name", id="nothing-after"),
        pytest.param("https:///example.com", "https:///example.com", "no host", id="3-slashes"),
        pytest.param("https://example", "https://example", '"example" is not', id="no-dot"),
        pytest.param("https://exemple.c", "https://exemple.c", "not a valid domain", id="tld"),
        pytest.param("www.example..com", "www.example..com", "not a valid domain", id="dots"),
        pytest.param("https://-a.com", "https://-a.com", "not a valid domain", id="hyphen"),
        pytest.param("https://a.com:80a", "https://a.com:80a", "port", id="bad-port"),
        pytest.param("https://a.com:99999", "https://a.com:99999", "port", id="big-port"),
    ],
)
def test_broken_links_are_flagged_where_they_are(link: str, flagged: str, problem: str) -> None:
    text = f"Voir {link} pour le menu."
    [warning] = _check(text, platform="tiktok")
    assert warning.kind == "broken_link"
    assert (warning.start, warning.end) == (5, 5 + len(flagged))
    assert text[warning.start : warning.end] == flagged
    assert f'Broken link "{flagged}" on TikTok: ' in warning.message
    assert problem in warning.message


def test_find_links_reports_each_link() -> None:
    links = find_links("A https://a.fr, B www.b.ca et C https//c.com.")
    assert [(link.text, link.problem is None) for link in links] == [
        ("https://a.fr", True),
        ("www.b.ca", True),
        ("https//c.com", False),
    ]


# --- everything together -----------------------------------------------------------------------


def test_run_checks_groups_by_variant_then_position_then_media(fr: Speller) -> None:
    warnings = run_checks(
        {
            "x": "Offre gratuite ? Non, gratuit : https//promo.fr publicatoin " + "bien " * 50,
            "linkedin": "Tout va bien.",
            "instagram": "Publicatoin gratuit",
        },
        [{"url": "https://cdn.example.com/a.jpg", "type": "image", "alt_text": ""}],
        banned_words=["gratuit"],
        language="fr-CA",
        speller=fr,
    )
    assert [(w.platform, w.kind, w.start) for w in warnings] == [
        ("x", "banned_word", 22),
        ("x", "broken_link", 32),
        ("x", "spelling", 48),
        ("x", "too_long", 280),
        ("instagram", "spelling", 0),
        ("instagram", "banned_word", 12),
        (None, "missing_alt_text", None),
    ]


def test_warning_as_dict_is_ready_for_json() -> None:
    warning = CheckWarning(
        kind="spelling",
        message='Possible misspelling "recieve" on X.',
        platform="x",
        start=9,
        end=16,
        suggestions=["receive"],
    )
    assert warning.as_dict() == {
        "kind": "spelling",
        "message": 'Possible misspelling "recieve" on X.',
        "platform": "x",
        "start": 9,
        "end": 16,
        "media_index": None,
        "suggestions": ["receive"],
    }
