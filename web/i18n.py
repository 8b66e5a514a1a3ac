"""Page text in French and English. Each page module keeps its own catalogue beside its code
and passes it to `render`; this one holds what every page shares."""

from __future__ import annotations

from collections.abc import Callable, Mapping

Catalogue = Mapping[str, Mapping[str, str]]

COMMON: Catalogue = {
    "en": {
        "skip": "Skip to content",
        "powered": "Sent through Passerelle on behalf of {agency}.",
        "error.not_found.title": "Page not found",
        "error.not_found.detail": "This page does not exist, or it is not yours to see.",
        "error.csrf.title": "Please try again",
        "error.csrf.detail": "This form expired or was not sent from our page. Reload the page "
        "and send it again.",
        "error.bad_request.title": "Something is wrong with what was sent",
        "error.bad_request.detail": "Reload the page and try again.",
        "error.link_invalid.title": "This link is not valid",
        "error.link_invalid.detail": "The link was altered or is not one of ours. Use the link "
        "from the e-mail exactly as it came, or ask the person who sent it for a new one.",
    },
    "fr": {
        "skip": "Aller au contenu",
        "powered": "Envoyé par Passerelle au nom de {agency}.",
        "error.not_found.title": "Page introuvable",
        "error.not_found.detail": "Cette page n'existe pas, ou vous n'y avez pas accès.",
        "error.csrf.title": "Veuillez réessayer",
        "error.csrf.detail": "Ce formulaire a expiré ou n'a pas été envoyé depuis notre page. "
        "Rechargez la page et envoyez-le de nouveau.",
        "error.bad_request.title": "Ce qui a été envoyé n'est pas valide",
        "error.bad_request.detail": "Rechargez la page et réessayez.",
        "error.link_invalid.title": "Ce lien n'est pas valide",
        "error.link_invalid.detail": "Le lien a été modifié ou ne vient pas de nous. Utilisez "
        "le lien du courriel tel quel, ou demandez-en un nouveau à la personne qui l'a envoyé.",
    },
}

LANGUAGES = ("en", "fr")


def language_for(locale: str | None) -> str:
    """'fr-CA' -> 'fr'; anything we do not speak -> 'en'."""
    head = (locale or "").replace("_", "-").split("-")[0].lower()
    return head if head in LANGUAGES else "en"


def translator(language: str, *catalogues: Catalogue) -> Callable[..., str]:
    merged: dict[str, str] = {}
    for catalogue in (COMMON, *catalogues):
        merged.update(catalogue.get("en", {}))
        merged.update(catalogue.get(language, {}))

    def t(key: str, **values: object) -> str:
        text = merged.get(key, key)
        return text.format(**values) if values else text

    return t
