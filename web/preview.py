"""A post and its comments as a person reads them on a page: every moment already written in
their language and in the brand's time zone, every platform by its name.

The partials `_post.html` and `_comments.html` take these, so that the external approver's page
and the client contacts' decision page show a post the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from web.i18n import Catalogue
from workflows.checks import PLATFORM_NAMES
from workflows.link_expiry import expiry_moment

# A video or a document from another address cannot play inside the page (the content security
# policy only lets media come from here): it is offered as a link instead.
_PICTURES = frozenset({"image", "gif"})
_VIDEOS = frozenset({"video"})


@dataclass(frozen=True)
class Moment:
    """An instant for a `<time>` element: machine-readable and as the reader says it."""

    iso: str
    text: str


@dataclass(frozen=True)
class MediaView:
    url: str
    kind: str
    """'image' (shown, with its alt text), 'video' or 'file' (a link labelled by its alt text)."""
    alt_text: str


@dataclass(frozen=True)
class VariantView:
    platform: str
    label: str
    text: str


@dataclass(frozen=True)
class PostView:
    title: str
    brand_name: str
    variants: list[VariantView]
    media: list[MediaView]
    planned: Moment | None
    revision_number: int
    step_name: str


@dataclass(frozen=True)
class CommentView:
    author_name: str
    body: str
    when: Moment
    platform: str | None
    """The platform's name when the comment is about one variant's text."""
    quote: str | None


def moment(when: datetime, language: str, zone: str) -> Moment:
    """'8 décembre 2026 à 17 h 00 (heure de Montréal)': the same words as the e-mails."""
    return Moment(iso=when.isoformat(), text=expiry_moment(when, language, zone))


def platform_label(platform: str) -> str:
    return PLATFORM_NAMES.get(platform, platform.replace("_", " ").capitalize())


def _field(source: Any, name: str) -> str:
    value = source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)
    return str(value or "")


def media_view(source: Any) -> MediaView:
    """From a revision's media (a dict) or an API model with `url`, `type`, `alt_text`."""
    kind = _field(source, "type")
    shown = "image" if kind in _PICTURES else "video" if kind in _VIDEOS else "file"
    return MediaView(url=_field(source, "url"), kind=shown, alt_text=_field(source, "alt_text"))


def post_view(
    *,
    title: str,
    brand_name: str,
    variants: Mapping[str, str],
    media: Iterable[Any],
    planned_at: datetime | None,
    revision_number: int,
    step_name: str,
    language: str,
    zone: str,
) -> PostView:
    return PostView(
        title=title,
        brand_name=brand_name,
        variants=[
            VariantView(platform=p, label=platform_label(p), text=text)
            for p, text in variants.items()
        ],
        media=[media_view(m) for m in media],
        planned=moment(planned_at, language, zone) if planned_at else None,
        revision_number=revision_number,
        step_name=step_name,
    )


def comment_views(comments: Iterable[Any], language: str, zone: str) -> list[CommentView]:
    """From `LinkComment`s or anything with `author_name`, `body`, `created_at` and an optional
    `anchor` (with `platform` and `quote`)."""
    out = []
    for comment in comments:
        anchor = getattr(comment, "anchor", None)
        platform = getattr(anchor, "platform", None) if anchor else None
        out.append(
            CommentView(
                author_name=comment.author_name,
                body=comment.body,
                when=moment(comment.created_at, language, zone),
                platform=platform_label(platform) if platform else None,
                quote=getattr(anchor, "quote", None) if anchor else None,
            )
        )
    return out


# The partials' words; a page passes them to `render` with its own (`with_partials`).
PARTIALS_TEXT: Catalogue = {
    "en": {
        "post.heading": "How the post will look",
        "post.meta": "{brand} · step “{step}” · version {version}",
        "post.planned": "Planned for",
        "post.unplanned": "No publication date is set yet.",
        "post.no_text": "No text for this platform.",
        "post.no_variant": "This post has no text yet.",
        "post.media": "Media",
        "post.alt": "Alt text: {alt}",
        "post.no_alt": "No alt text: people who use a screen reader will not know what it shows.",
        "post.video": "Watch the video",
        "post.video_described": "Watch the video: {alt}",
        "post.file": "Open the file",
        "post.file_described": "Open the file: {alt}",
        "comments.heading": "Comments",
        "comments.none": "No comments yet.",
        "comments.on": "About the {platform} text:",
        "comments.on_title": "About the title:",
        "decision.heading": "Your decision",
        "decision.comment": "Comment",
        "decision.comment_hint": "Required to request changes; optional otherwise. "
        "At most {max} characters.",
        "decision.approve": "Approve",
        "decision.request_changes": "Request changes",
        "decision.reject": "Reject",
        "decision.sending": "Sending…",
        "decision.error.comment_required": "Say what to change: a comment is required to "
        "request changes.",
        "decision.error.comment_too_long": "This comment is too long: at most {max} characters.",
        "decision.error.decision": "Choose one of the three buttons.",
    },
    "fr": {
        "post.heading": "Aperçu de la publication",
        "post.meta": "{brand} · étape « {step} » · version {version}",
        "post.planned": "Publication prévue le",
        "post.unplanned": "Aucune date de publication n'est encore fixée.",
        "post.no_text": "Aucun texte pour cette plateforme.",
        "post.no_variant": "Cette publication n'a pas encore de texte.",
        "post.media": "Médias",
        "post.alt": "Texte alternatif : {alt}",
        "post.no_alt": "Aucun texte alternatif : les personnes qui utilisent un lecteur "
        "d'écran ne sauront pas ce qu'il montre.",
        "post.video": "Voir la vidéo",
        "post.video_described": "Voir la vidéo : {alt}",
        "post.file": "Ouvrir le fichier",
        "post.file_described": "Ouvrir le fichier : {alt}",
        "comments.heading": "Commentaires",
        "comments.none": "Aucun commentaire pour l'instant.",
        "comments.on": "À propos du texte {platform} :",
        "comments.on_title": "À propos du titre :",
        "decision.heading": "Votre décision",
        "decision.comment": "Commentaire",
        "decision.comment_hint": "Obligatoire pour demander des modifications, facultatif "
        "sinon. Au plus {max} caractères.",
        "decision.approve": "Approuver",
        "decision.request_changes": "Demander des modifications",
        "decision.reject": "Refuser",
        "decision.sending": "Envoi…",
        "decision.error.comment_required": "Dites ce qu'il faut changer : un commentaire est "
        "obligatoire pour demander des modifications.",
        "decision.error.comment_too_long": "Ce commentaire est trop long : au plus {max} "
        "caractères.",
        "decision.error.decision": "Choisissez l'un des trois boutons.",
    },
}


def with_partials(text: Catalogue) -> Catalogue:
    """A page's catalogue with the partials' words (the page's own win)."""
    return {
        language: {**PARTIALS_TEXT.get(language, {}), **text.get(language, {})}
        for language in {*PARTIALS_TEXT, *text}
    }
