"""The sandbox platform's inbox: a plausible trickle of what a brand's community says.

Everything is a function of (account, minute) through a hash, so the sandbox keeps no state and
two polls over the same window return the same items with the same ids. Each minute of the
day has a chance of an item (more in Montréal's daytime than at night); the item's kind,
author, language and tone follow from the same hash. Authors write in their own language, reply
under an earlier comment of the same post, and write private messages in one conversation per
author. Once a day, at an hour of its own, each account gets a burst: 15 negative comments in 20
minutes under the same post, the shape of a crisis for the inbox's early warning to catch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from social.connectors.types import InboundItem, InboxKind

MEDIA_HOST = "https://sandbox.passerelle.invalid"
DEFAULT_WINDOW = timedelta(hours=24)
"""What a poll without `since` returns, like a platform's default recent window."""
MAX_WINDOW = timedelta(days=7)
"""The oldest a poll reaches back, whatever `since` says (platforms keep a bounded history, and
it bounds the work: one hash per minute)."""
BURST_SIZE = 15
BURST_MINUTES = 20
_REPLY_LOOKBACK = 240
"""How far back (minutes) a reply looks for the comment it answers; none found: a comment."""
_MONTREAL = timedelta(hours=-5)
"""Montréal's standard offset, for the day's rhythm only (an hour off in summer is no matter)."""


def _u(*parts: object) -> float:
    raw = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(raw[:8], "big") / 2**64


def _h(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Author:
    id: str
    handle: str
    name: str
    language: str


def _authors() -> tuple[Author, ...]:
    french = (
        ("Geneviève Tremblay", "gen_tremblay"),
        ("Marc-André Gagnon", "ma.gagnon"),
        ("Sophie Côté", "sophiecote_qc"),
        ("Jean-François Roy", "jf_roy"),
        ("Isabelle Bouchard", "isa.bouchard"),
        ("Mathieu Gauthier", "math_gauthier"),
        ("Chloé Morin", "chloe.morin"),
        ("Étienne Lavoie", "etienne_lavoie"),
        ("Annie Fortin", "annie_fortin22"),
        ("Simon Pelletier", "simon.pelletier"),
        ("Catherine Bélanger", "cath_belanger"),
        ("Maxime Lévesque", "maxlevesque"),
        ("Julie Bergeron", "julie.bergeron"),
        ("Olivier Leblanc", "oli_leblanc"),
        ("Valérie Paquette", "val.paquette"),
        ("Alexandre Girard", "alex_girard_mtl"),
        ("Mélanie Simard", "mel.simard"),
        ("Francis Boucher", "francis_boucher"),
        ("Karine Caron", "karine.caron"),
        ("Patrick Ouellet", "pat_ouellet"),
    )
    english = (
        ("Emily Walsh", "emwalsh"),
        ("Ryan MacDonald", "ryan.macdonald"),
        ("Sarah Kowalski", "sarahk_mtl"),
        ("David Chen", "dchen"),
        ("Jessica Brooks", "jess.brooks"),
        ("Michael O'Neill", "mike_oneill"),
        ("Hannah Levy", "hannah.levy"),
        ("Tom Fraser", "tomfraser"),
        ("Priya Sharma", "priya.s"),
        ("Kevin Murphy", "kev_murphy"),
        ("Laura Bennett", "laurabennett"),
        ("Daniel Rossi", "dan.rossi"),
    )
    people = [(name, handle, "fr") for name, handle in french]
    people += [(name, handle, "en") for name, handle in english]
    return tuple(
        Author(id=f"sbx-user-{i:03d}", handle=handle, name=name, language=lang)
        for i, (name, handle, lang) in enumerate(people)
    )


AUTHORS = _authors()

# What the community writes, by (language, tone). Invented, in the voice of a small Québec
# brand's followers (a café, a shop, a workshop): joual and anglicisms included.
COMMENTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("fr", "positive"): (
        "Wow c'est vraiment beau 😍",
        "Trop hâte d'essayer ça!",
        "Bravo à toute l'équipe, c'est vraiment réussi 👏",
        "Meilleur café en ville, pas de doute ☕",
        "J'ai adoré, merci pour l'accueil!",
        "C'est ben bon, mes enfants en raffolent",
        "Merci ben gros pour le service rapide",
        "Full belle ambiance samedi, on revient c'est sûr",
        "Chu ben contente de ma commande, merci!",
        "Magnifique photo ❤️",
        "Vous êtes les meilleurs 🙌",
        "Tellement bon, je recommande à 100 %",
    ),
    ("fr", "neutral"): (
        "Vous êtes ouverts jusqu'à quelle heure dimanche?",
        "Est-ce que vous livrez à Laval?",
        "C'est quoi le prix pour un groupe de 10?",
        "Y'a tu encore des places pour jeudi?",
        "Vous avez-tu une succursale sur la Rive-Sud?",
        "Le code promo marche jusqu'à quand?",
        "Tsé le gros pot bleu, vous en avez encore?",
        "C'est disponible en taille M?",
        "Pis, c'est quand la prochaine vente?",
        "On se voit au marché samedi",
    ),
    ("fr", "negative"): (
        "Ça fait trois semaines que j'attends mon remboursement",
        "C'est plate, le produit a brisé après deux jours",
        "Service poche, 45 minutes d'attente pour un café froid",
        "Franchement décevant, la qualité a baissé",
        "Personne répond au téléphone, c'est ridicule",
        "Ma livraison est encore en retard, pas fiable pantoute",
    ),
    ("en", "positive"): (
        "Love this! 😍",
        "Best poutine in Montreal, hands down",
        "Great workshop yesterday, learned a lot",
        "You guys rock!! 🔥",
        "Super friendly staff, thank you!",
        "Beautiful photos, can't wait to visit",
        "So happy with my order 🙏",
        "Awesome event, my kids loved it",
    ),
    ("en", "neutral"): (
        "What time do you open on Sundays?",
        "Do you ship to Ontario?",
        "Is the large size back in stock?",
        "Are the workshops in English too?",
        "Any gluten free options?",
        "Is there parking nearby?",
        "Will you be at the market this weekend?",
    ),
    ("en", "negative"): (
        "Still waiting for my refund after 3 weeks",
        "Terrible quality, it broke after two days",
        "Worst service ever, waited an hour",
        "Really disappointed, the food was cold",
        "Nobody answers the phone, so frustrating",
    ),
}

MESSAGES: dict[tuple[str, str], tuple[str, ...]] = {
    ("fr", "positive"): (
        "Bonjour! Juste pour vous dire merci, le cadeau a fait fureur 😊",
        "Allo, ma commande est arrivée, tout est parfait. Merci!",
        "Merci pour votre réponse rapide, vous êtes super",
    ),
    ("fr", "neutral"): (
        "Bonjour, je voudrais changer l'adresse de livraison de ma commande 10482",
        "Allo, est-ce que je peux réserver pour 8 personnes vendredi soir?",
        "Bonjour, vous engagez-tu pour l'été?",
        "Salut, c'est possible d'avoir une facture pour ma compagnie?",
        "Bonjour, est-ce que le chèque-cadeau est valide en magasin?",
    ),
    ("fr", "negative"): (
        "J'ai été chargé deux fois pis personne me répond. Je veux mon argent.",
        "Ma commande est arrivée toute brisée, je suis vraiment fâchée",
        "Ça fait 3 messages que je vous envoie, c'est inacceptable",
    ),
    ("en", "positive"): (
        "Hi! Just wanted to say thanks, the gift was a hit 😊",
        "Order arrived today, everything is perfect. Thank you!",
    ),
    ("en", "neutral"): (
        "Hi, can I change the delivery address on order 20931?",
        "Hello, do you take reservations for groups of 8?",
        "Hi, are you hiring for the summer?",
        "Can I get an invoice for my company?",
    ),
    ("en", "negative"): (
        "I was charged twice and nobody answers. I want my money back.",
        "My order arrived damaged, I'm really upset",
        "This is my third message, this is unacceptable",
    ),
}

CRISIS: dict[str, tuple[str, ...]] = {
    # Under one post, within minutes: what a product recall or a bad story brings.
    "fr": (
        "C'est une arnaque, je veux être remboursé",
        "Honteux. Je reviendrai jamais",
        "Je suis en tabarnak, même problème que tout le monde ici",
        "Pareil pour moi, produit défectueux et aucune réponse",
        "Vous devriez avoir honte de traiter vos clients de même",
        "Boycott. Pire entreprise au Québec",
        "Encore un client déçu, c'est inacceptable 😡",
        "Arnaque totale. Je vais avertir tout mon monde",
    ),
    "en": (
        "This is a scam, I want a refund",
        "Same here, defective product and zero response 😡",
        "Shameful. Never buying from you again",
        "Worst company ever, avoid",
        "Disgusting way to treat customers",
        "Another angry customer here, this is unacceptable",
    ),
}


def _minute(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


def _at(minute: int, *parts: object) -> datetime:
    """A time inside `minute`, its seconds from the hash."""
    return datetime.fromtimestamp(minute * 60 + int(_u(minute, *parts, "second") * 60), UTC)


def _rate(account: str, minute: int) -> float:
    """The chance of an item in this minute: about one every 5 minutes in the daytime of a
    busy account, one an hour at night, scaled by the account's own size."""
    local_hour = (datetime.fromtimestamp(minute * 60, UTC) + _MONTREAL).hour
    daytime = 8 <= local_hour < 23
    size = 0.5 + _u(account, "inbox-size")
    return (0.14 if daytime else 0.015) * size


def _pick(options: tuple[str, ...] | tuple[Author, ...], *parts: object) -> int:
    return int(_u(*parts) * len(options))


def _tone(*parts: object) -> str:
    x = _u(*parts, "tone")
    return "negative" if x < 0.12 else "neutral" if x < 0.55 else "positive"


def _post(account: str, minute: int) -> str:
    """One of the account's recent posts: three a day, comments land on today's."""
    day = minute // 1440
    return f"sbx-post-{_h(account, day, int(_u(account, minute, 'post') * 3))}"


@lru_cache(maxsize=65_536)
def _trickle_item(account: str, minute: int) -> InboundItem | None:
    """The everyday item of this account in this minute, if any: a private message (20 %), a
    mention in someone else's post (10 %), a reply under an earlier comment (15 %) or a comment
    under one of the day's posts."""
    if _u(account, minute, "item") >= _rate(account, minute):
        return None
    author = AUTHORS[_pick(AUTHORS, account, minute, "author")]
    tone = _tone(account, minute)
    roll = _u(account, minute, "kind")
    parent = _earlier_comment(account, minute) if 0.3 <= roll < 0.45 else None
    media: tuple[str, ...] = ()
    thread: str | None
    if roll < 0.2:
        kind, thread = InboxKind.message, f"sbx-dm-{_h(account, author.id)}"
        texts = MESSAGES[(author.language, tone)]
        if _u(account, minute, "photo") < 0.15:
            media = (f"{MEDIA_HOST}/media/{_h(account, minute, 'photo')}.jpg",)
    elif roll < 0.3:
        kind, thread = InboxKind.mention, f"sbx-ext-post-{_h(account, minute, 'elsewhere')}"
        texts = COMMENTS[(author.language, tone)]
    elif parent is not None:
        kind, thread = InboxKind.reply, parent.thread_external_id
        texts = COMMENTS[(author.language, tone)]
    else:
        kind, thread = InboxKind.comment, _post(account, minute)
        texts = COMMENTS[(author.language, tone)]
    return InboundItem(
        account_external_id=account,
        external_id=f"sbx-{kind.value}-{_h(account, minute)}",
        kind=kind,
        text=texts[_pick(texts, account, minute, "text")],
        author_id=author.id,
        author_handle=author.handle,
        author_name=author.name,
        created_at=_at(minute, account),
        parent_external_id=parent.external_id if parent is not None else None,
        thread_external_id=thread,
        media_urls=media,
    )


def _earlier_comment(account: str, minute: int) -> InboundItem | None:
    for earlier in range(minute - 1, minute - _REPLY_LOOKBACK, -1):
        item = _trickle_item(account, earlier)
        if item is not None and item.kind is InboxKind.comment:
            return item
    return None


def burst_start(account: str, day: date) -> datetime:
    """When this account's daily crisis-like burst begins: between 14:00 and 22:00 UTC (the
    afternoon and evening in Montréal), at a minute of its own each day."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return midnight + timedelta(hours=14, minutes=int(_u(account, day, "burst") * 8 * 60))


def _burst_items(account: str, day: date) -> list[InboundItem]:
    start = _minute(burst_start(account, day))
    post = f"sbx-post-{_h(account, day, 'burst-post')}"
    offsets = sorted(range(BURST_MINUTES), key=lambda k: _u(account, day, k, "burst-slot"))
    items = []
    for n, offset in enumerate(sorted(offsets[:BURST_SIZE])):
        minute = start + offset
        author = AUTHORS[_pick(AUTHORS, account, day, n, "burst-author")]
        texts = CRISIS[author.language]
        items.append(
            InboundItem(
                account_external_id=account,
                external_id=f"sbx-comment-{_h(account, day, n, 'burst')}",
                kind=InboxKind.comment,
                text=texts[_pick(texts, account, day, n, "burst-text")],
                author_id=author.id,
                author_handle=author.handle,
                author_name=author.name,
                created_at=_at(minute, account, day, n, "burst"),
                thread_external_id=post,
            )
        )
    return items


def items_between(account: str, start: datetime, end: datetime) -> list[InboundItem]:
    """Everything that reached `account` from `start` to `end` (both included), oldest first."""
    if end < start:
        return []
    found = [
        item
        for minute in range(_minute(start), _minute(end) + 1)
        if (item := _trickle_item(account, minute)) is not None
    ]
    day = start.astimezone(UTC).date()
    while day <= end.astimezone(UTC).date():
        found += _burst_items(account, day)
        day += timedelta(days=1)
    inside = [item for item in found if start <= item.created_at <= end]
    return sorted(inside, key=lambda item: (item.created_at, item.external_id))
