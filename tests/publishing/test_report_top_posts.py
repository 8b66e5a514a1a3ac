"""The monthly client report's top posts: each brand's posts published through us in the month
(counted in the agency's timezone, as the report's days are), most engaging first, with their
permalink and figures; in the JSON and in the PDF, in the client's language."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from publishing.figures import EXCERPT, excerpt
from publishing.models import Publication
from social.connectors.types import Platform
from social.report_pdf import render_report_pdf
from social.schemas import ClientReport, ReportAccount, ReportBrand, ReportTotals, TopPost
from tests.support.factories import new_world
from tests.support.pdf import read
from tests.support.publishing import approved_item, sandbox_account, schedule

NOW = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
# The agency is in Montréal (UTC-5 in winter, UTC-4 until 1 November).
LATE_IN_NOVEMBER = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)  # 30 November, 22:30 there
LATE_IN_OCTOBER = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)  # 31 October, 22:00 there


async def published_post(
    client,
    db,
    world,
    account: str,
    text: str,
    at: datetime,
    *,
    brand: str,
    engagements: int | None,
    impressions: int | None = None,
    status: str = "published",
) -> str:
    """An item scheduled through the API whose publication then went out at `at` and had its
    figures read (as the worker leaves it)."""
    item = await approved_item(
        client, world, [account], variants={"instagram": text}, brand=brand, title=text[:40]
    )
    await schedule(client, world, item, NOW + timedelta(days=1))
    async with db.tenant_transaction(world.tenant_id) as session:
        publication = (
            await session.scalars(
                select(Publication).where(
                    Publication.tenant_id == world.tenant_id,
                    Publication.content_item_id == uuid.UUID(item),
                )
            )
        ).one()
        publication.status = status
        if status == "published":
            post_id = uuid.uuid4().hex
            publication.external_post_id = post_id
            publication.permalink = f"https://sandbox.passerelle.invalid/posts/{post_id}"
            publication.published_at = at
            publication.impressions = impressions if impressions is not None else 1_000
            publication.reach = 800
            publication.engagements = engagements
            publication.video_views = None
            publication.figures_at = at + timedelta(hours=1)
        else:
            publication.error_code, publication.error = "rejected", "Refused"
        return publication.permalink or ""


async def test_the_report_lists_each_brands_top_posts_of_the_month(client, db, clock):
    clock.set(NOW)
    world = await new_world(
        client,
        customer={"name": "Boulangerie Tops", "locale": "en"},
        brands={"alpha": {"name": "Alpha bakery"}, "beta": {"name": "Beta bakery"}},
    )
    alpha = await sandbox_account(client, world, brand="alpha")
    beta = await sandbox_account(client, world, brand="beta")

    def post(text: str, at: datetime, engagements: int | None, **more):
        return published_post(
            client, db, world, alpha, text, at, brand="alpha", engagements=engagements, **more
        )

    quiet = await post("Quiet Tuesday loaf", datetime(2026, 11, 10, 15, tzinfo=UTC), 50)
    best = await post("Our sourdough is back", datetime(2026, 11, 20, 15, tzinfo=UTC), 300)
    late = await post("Last batch of November", LATE_IN_NOVEMBER, 120)
    unread = await post("Figures not read yet", datetime(2026, 11, 25, 15, tzinfo=UTC), None)
    # Seen as much but less engaging than `late`: the tie on engagements goes to impressions.
    seen = await post(
        "Same engagements, more seen",
        datetime(2026, 11, 12, 15, tzinfo=UTC),
        120,
        impressions=5_000,
    )
    # Not November's: October in Montréal although November in UTC, December, and a failure.
    await post("Halloween night", LATE_IN_OCTOBER, 999)
    await post("December news", datetime(2026, 12, 2, 15, tzinfo=UTC), 999)
    await post("Never went out", datetime(2026, 11, 15, 15, tzinfo=UTC), 999, status="failed")
    # Another brand's post stays with that brand.
    other = await published_post(
        client,
        db,
        world,
        beta,
        "Beta croissants",
        datetime(2026, 11, 5, 15, tzinfo=UTC),
        brand="beta",
        engagements=500,
    )

    path = f"/v1/clients/{world.customer['id']}/reports/2026-11"
    response = await client.get(path, headers=world.boss)
    assert response.status_code == 200, response.text
    brands = {brand["name"]: brand for brand in response.json()["brands"]}

    tops = brands["Alpha bakery"]["top_posts"]
    assert [t["permalink"] for t in tops] == [best, seen, late, quiet, unread]
    assert [t["engagements"] for t in tops] == [300, 120, 120, 50, None]
    first = tops[0]
    assert first["text"] == "Our sourdough is back"
    assert first["platform"] == "sandbox" and first["handle"]
    assert first["published_at"] == "2026-11-20T15:00:00Z"
    assert (first["impressions"], first["reach"], first["video_views"]) == (1_000, 800, None)
    assert [t["permalink"] for t in brands["Beta bakery"]["top_posts"]] == [other]

    # October's report has the post of 31 October evening, Montréal time.
    october = await client.get(
        f"/v1/clients/{world.customer['id']}/reports/2026-10", headers=world.boss
    )
    assert october.status_code == 200, october.text
    [halloween] = october.json()["brands"][0]["top_posts"]
    assert halloween["text"] == "Halloween night"

    # The PDF, in the client's language (English), has the same posts under "Top posts".
    pdf = await client.get(f"{path}/pdf", headers=world.boss)
    assert pdf.status_code == 200, pdf.text
    reader, text = read(pdf.content)
    assert text.count("Top posts") == 2  # one section per brand
    assert "1. Demo" in text and "published on 20 November 2026" in text
    assert "“Our sourdough is back”" in text
    assert "Engagements: 300" in text and "Reach: 800" in text and "Video views: —" in text
    # Posted at 22:30 on 30 November in Montréal: the report says 30 November, not 1 December.
    assert "published on 30 November 2026" in text and "1 December" not in text
    links = [
        annotation.get_object()["/A"]["/URI"]
        for page in reader.pages
        for annotation in page.get("/Annots") or []
    ]
    assert best in links and other in links
    assert "Halloween night" not in text and "December news" not in text


def _report(language: str, posts: list[TopPost]) -> ClientReport:
    blank = ReportTotals.model_validate(dict.fromkeys(ReportTotals.model_fields))
    account = ReportAccount(
        id=uuid.uuid4(),
        platform=Platform.instagram_business,
        handle="painsduplateau",
        display_name="Pains du Plateau",
        totals=blank,
        daily=[],
    )
    brand = ReportBrand(
        id=uuid.uuid4(), name="Pains du Plateau", totals=blank, accounts=[account], top_posts=posts
    )
    return ClientReport(
        client_id=uuid.uuid4(),
        client_name="Boulangerie Saint-Laurent",
        agency_name="Agence Démo",
        month="2026-11",
        language=language,  # type: ignore[arg-type]
        generated_at=datetime(2026, 12, 2, 8, tzinfo=UTC),
        totals=blank,
        brands=[brand],
        anomalies=[],
    )


TOP = TopPost(
    platform="instagram_business",
    handle="painsduplateau",
    text="Le levain est de retour, " + "croûte dorée et mie alvéolée " * 12,
    permalink="https://www.instagram.com/p/C0ffee/",
    published_at=LATE_IN_NOVEMBER,
    impressions=12_345,
    reach=9_876,
    engagements=543,
    video_views=None,
)


def test_the_pdf_says_top_posts_in_french() -> None:
    _, text = read(render_report_pdf(_report("fr", [TOP]), timezone="America/Montreal"))
    assert "Meilleures publications" in text
    assert "Les publications du mois par Agence Démo, les plus engageantes d'abord." in text
    assert "1. Instagram @painsduplateau — publiée le 30 novembre 2026" in text
    assert "Impressions : 12 345" in text and "Portée : 9 876" in text
    assert "Engagements : 543" in text and "Vues de vidéos : —" in text
    assert "« Le levain est de retour" in text
    assert "https://www.instagram.com/p/C0ffee/" in text
    assert "Top posts" not in text


def test_the_pdf_says_top_posts_in_english_and_leaves_the_section_out_without_posts() -> None:
    festive = TOP.model_copy(update={"text": "Bonne fête 🎉🥐 à tous !"})
    _, text = read(render_report_pdf(_report("en", [festive]), timezone="America/Montreal"))
    assert "Top posts" in text and "Meilleures publications" not in text
    assert "“Bonne fête à tous !”" in text  # the emoji left out rather than shown as "?"
    assert "published on 30 November 2026" in text
    assert "Impressions: 12,345" in text
    # In UTC it was already 1 December: the agency's timezone decides.
    _, utc = read(render_report_pdf(_report("en", [TOP])))
    assert "published on 1 December 2026" in utc
    _, empty = read(render_report_pdf(_report("en", [])))
    assert "Top posts" not in empty


def test_a_long_post_is_cut_at_a_word_with_an_ellipsis() -> None:
    long = "Le levain est de retour,\ncroûte dorée " + "et mie alvéolée " * 30
    cut = excerpt(long)
    assert len(cut) <= EXCERPT and cut.endswith("alvéolée…")
    assert cut.startswith("Le levain est de retour, croûte dorée et mie")
    assert excerpt("Court et bon.") == "Court et bon."
