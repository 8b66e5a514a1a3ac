"""The agency's branding through the API: its logo (uploaded as the image itself, served
publicly by content hash) and its own client-facing app address."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from infra.errors import InvalidFields
from tenants.service.branding import app_address
from tests.support import walk
from tests.support.factories import Agency, add_person, new_agency
from tests.support.images import image_bytes
from tests.support.problems import assert_field_refused, assert_problem

LOGO = "/v1/agency/logo"
BRANDING = "/v1/agency/branding"
MAX = 256 * 1024

SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.cookie)</script></svg>"
)


async def put_logo(
    client: httpx.AsyncClient, agency: Agency, data: bytes, media: str = "image/png", **headers
) -> httpx.Response:
    return await client.put(
        LOGO, content=data, headers={**agency.owner.headers, "content-type": media, **headers}
    )


async def branding_of(client: httpx.AsyncClient, agency: Agency) -> dict:
    response = await client.get(BRANDING, headers=agency.owner.headers)
    assert response.status_code == 200, response.text
    return response.json()


def public_path(url: str) -> str:
    """The path of an absolute logo URL (the test client talks to the app directly)."""
    return httpx.URL(url).path


# ---------------------------------------------------------------------------------------------
# Upload, replace, delete


@pytest.mark.parametrize(
    ("kind", "media"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]
)
async def test_a_logo_is_uploaded_and_served_publicly_by_its_hash(client, settings, kind, media):
    agency = await new_agency(client)
    data = image_bytes(kind)
    response = await put_logo(client, agency, data, media)
    assert response.status_code == 200, response.text
    body = response.json()
    digest = hashlib.sha256(data).hexdigest()
    base = settings.public_base_url.rstrip("/")
    assert body["logo_url"] == f"{base}/agency-logos/{agency.tenant_id}/{digest}"
    assert body["logo_content_type"] == media and body["logo_size"] == len(data)
    assert response.headers["etag"] == f'"{body["version"]}"'
    assert await branding_of(client, agency) == body

    served = await client.get(public_path(body["logo_url"]))  # no token: e-mails show it
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == media
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.headers["x-content-type-options"] == "nosniff"


async def test_replacing_the_logo_changes_its_address_and_retires_the_old_one(client):
    agency = await new_agency(client)
    first = (await put_logo(client, agency, image_bytes(color="navy"))).json()
    second_data = image_bytes(color="crimson")
    response = await put_logo(client, agency, second_data, **{"If-Match": f'"{first["version"]}"'})
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["logo_url"] != first["logo_url"]
    assert second["version"] == first["version"] + 1
    assert (await client.get(public_path(second["logo_url"]))).content == second_data
    assert_problem(await client.get(public_path(first["logo_url"])), 404, "not-found")


async def test_the_same_logo_again_changes_nothing(client):
    agency = await new_agency(client)
    data = image_bytes()
    first = (await put_logo(client, agency, data)).json()
    again = await put_logo(client, agency, data)
    assert again.status_code == 200, again.text
    assert again.json() == first


async def test_deleting_the_logo_removes_it_and_its_address(client):
    agency = await new_agency(client)
    made = (await put_logo(client, agency, image_bytes())).json()
    response = await client.delete(LOGO, headers=agency.owner.headers)
    assert response.status_code == 200, response.text
    cleared = response.json()
    assert cleared["logo_url"] is None and cleared["logo_size"] is None
    assert cleared["version"] == made["version"] + 1
    assert_problem(await client.get(public_path(made["logo_url"])), 404, "not-found")
    # Deleting what is not there is not an error, and changes nothing.
    again = await client.delete(LOGO, headers=agency.owner.headers)
    assert again.status_code == 200 and again.json() == cleared


async def test_a_stale_if_match_is_a_412_and_keeps_the_logo(client):
    agency = await new_agency(client)
    made = (await put_logo(client, agency, image_bytes())).json()
    stale = {"If-Match": f'"{made["version"] - 1}"'}
    response = await put_logo(client, agency, image_bytes(color="green"), **stale)
    assert_problem(response, 412, "precondition-failed")
    response = await client.delete(LOGO, headers={**agency.owner.headers, **stale})
    assert_problem(response, 412, "precondition-failed")
    assert await branding_of(client, agency) == made


# ---------------------------------------------------------------------------------------------
# Bad input: a clear problem, nothing stored


BAD_LOGOS = [
    pytest.param(SVG, "image/svg+xml", 415, "logo-type-unsupported", id="svg"),
    pytest.param(SVG, "image/png", 422, "logo-invalid", id="svg-sent-as-png"),
    pytest.param(image_bytes("JPEG"), "image/png", 422, "logo-invalid", id="jpeg-sent-as-png"),
    pytest.param(image_bytes("PNG"), "image/webp", 422, "logo-invalid", id="png-sent-as-webp"),
    pytest.param(image_bytes("PNG"), "application/json", 415, "logo-type-unsupported", id="json"),
    pytest.param(image_bytes("GIF"), "image/gif", 415, "logo-type-unsupported", id="gif"),
    pytest.param(b"", "image/png", 422, "logo-invalid", id="empty"),
    pytest.param(image_bytes()[:60], "image/png", 422, "logo-invalid", id="cut-short"),
    pytest.param(b"\x89PNG\r\n\x1a\n" + b"x" * 100, "image/png", 422, "logo-invalid", id="fake"),
    pytest.param(
        image_bytes(size=(4000, 10)), "image/png", 422, "logo-invalid", id="too-many-pixels"
    ),
    pytest.param(b"\x00" * (MAX + 1), "image/png", 413, "logo-too-large", id="over-256-kib"),
    pytest.param(b"\x00" * (2 * 1024 * 1024), "image/png", 413, None, id="over-the-body-limit"),
]


@pytest.mark.parametrize(("data", "media", "status", "slug"), BAD_LOGOS)
async def test_a_bad_logo_is_a_clear_problem_and_stores_nothing(
    client, db, data, media, status, slug
):
    agency = await new_agency(client)
    kept = (await put_logo(client, agency, image_bytes())).json()
    before = await walk.tenant_snapshot(db, agency.tenant_id)
    problem = assert_problem(await put_logo(client, agency, data, media), status, slug)
    assert problem.get("detail")
    assert await walk.tenant_snapshot(db, agency.tenant_id) == before
    assert await branding_of(client, agency) == kept


async def test_svg_is_refused_with_a_reason(client):
    agency = await new_agency(client)
    problem = assert_problem(await put_logo(client, agency, SVG, "image/svg+xml"), 415)
    assert "SVG" in problem["detail"] and "script" in problem["detail"]


async def _stream(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"\x00" * 65536
        sent += 65536


async def test_a_streamed_logo_over_the_limit_is_refused_and_stores_nothing(client, db):
    """No Content-Length to refuse up front: the limit holds while the body streams in."""
    agency = await new_agency(client)
    before = await walk.tenant_snapshot(db, agency.tenant_id)
    request = client.build_request(
        "PUT",
        LOGO,
        headers={**agency.owner.headers, "content-type": "image/png"},
        content=_stream(MAX + 65536),
    )
    assert "content-length" not in request.headers
    assert_problem(await client.send(request), 413, "logo-too-large")
    assert await walk.tenant_snapshot(db, agency.tenant_id) == before


@pytest.mark.parametrize("role", ["manager", "member", "client"])
async def test_only_owners_and_admins_change_the_branding(client, db, resources, role):
    agency = await new_agency(client)
    person = await add_person(client, db, resources.passwords, agency, role)
    before = await walk.tenant_snapshot(db, agency.tenant_id)
    headers = {**person.headers, "content-type": "image/png"}
    for response in (
        await client.put(LOGO, content=image_bytes(), headers=headers),
        await client.delete(LOGO, headers=person.headers),
        await client.patch(
            BRANDING, json={"app_base_url": "https://a.example"}, headers=person.headers
        ),
    ):
        assert_problem(response, 403, "permission-denied")
    assert await walk.tenant_snapshot(db, agency.tenant_id) == before


async def test_an_admin_sets_the_logo(client, db, resources):
    agency = await new_agency(client)
    admin = await add_person(client, db, resources.passwords, agency, "admin")
    response = await client.put(
        LOGO, content=image_bytes(), headers={**admin.headers, "content-type": "image/png"}
    )
    assert response.status_code == 200, response.text


async def test_without_a_token_the_logo_cannot_be_set(client):
    response = await client.put(LOGO, content=image_bytes(), headers={"content-type": "image/png"})
    assert_problem(response, 401)


# ---------------------------------------------------------------------------------------------
# Another agency


async def test_another_agency_can_neither_see_nor_change_your_logo(client, db):
    mine, theirs = await new_agency(client), await new_agency(client)
    made = (await put_logo(client, mine, image_bytes(color="navy"))).json()
    digest = made["logo_url"].rsplit("/", 1)[1]
    before = await walk.tenant_snapshot(db, mine.tenant_id)

    # Their own upload and deletion change only their agency.
    theirs_made = (await put_logo(client, theirs, image_bytes(color="orange"))).json()
    response = await client.delete(LOGO, headers=theirs.owner.headers)
    assert response.status_code == 200 and response.json()["logo_url"] is None
    assert await branding_of(client, mine) == made

    # My hash under their agency, their old hash under mine, unknown agencies and bad
    # addresses: the same 404.
    their_digest = theirs_made["logo_url"].rsplit("/", 1)[1]
    answers = [
        await client.get(f"/agency-logos/{theirs.tenant_id}/{digest}"),
        await client.get(f"/agency-logos/{mine.tenant_id}/{their_digest}"),
        await client.get(f"/agency-logos/{uuid.uuid4()}/{digest}"),
        await client.get(f"/agency-logos/not-a-uuid/{digest}"),
        await client.get(f"/agency-logos/{mine.tenant_id}/{digest.upper()}"),
        await client.get(f"/agency-logos/{mine.tenant_id}/{digest[:-1]}"),
    ]
    details = {assert_problem(r, 404, "not-found")["detail"] for r in answers}
    assert len(details) == 1
    assert await walk.tenant_snapshot(db, mine.tenant_id) == before


# ---------------------------------------------------------------------------------------------
# The agency's own app address


async def test_the_app_address_is_set_normalised_and_cleared(client):
    agency = await new_agency(client)
    start = await branding_of(client, agency)
    assert start["app_base_url"] is None and start["version"] == 0
    response = await client.patch(
        BRANDING,
        json={"app_base_url": "https://Portail.Agence.example:443/clients/"},
        headers={**agency.owner.headers, "If-Match": '"0"'},
    )
    assert response.status_code == 200, response.text
    assert response.json()["app_base_url"] == "https://portail.agence.example/clients"
    assert response.headers["etag"] == '"1"'

    response = await client.patch(BRANDING, json={}, headers=agency.owner.headers)
    assert response.status_code == 200 and response.json()["version"] == 1  # nothing asked

    response = await client.patch(
        BRANDING, json={"app_base_url": None}, headers={**agency.owner.headers, "If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    assert response.json()["app_base_url"] is None and response.json()["version"] == 2


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://portail.agence.example", "url_not_https"),
        ("https://user:secret@portail.agence.example", "url_credentials"),
        ("https://portail.agence.example/?next=evil", "url_query"),
        ("https://portail.agence.example/#top", "url_query"),
        ("javascript:alert(1)", "url_invalid"),
        ("ftp://portail.agence.example", "url_invalid"),
        ("portail.agence.example", "url_invalid"),
    ],
)
async def test_a_bad_app_address_is_a_422_naming_it(client, db, url, code):
    agency = await new_agency(client)
    before = await walk.tenant_snapshot(db, agency.tenant_id)
    response = await client.patch(
        BRANDING, json={"app_base_url": url}, headers=agency.owner.headers
    )
    assert_field_refused(response, "/app_base_url", code)
    assert await walk.tenant_snapshot(db, agency.tenant_id) == before


async def test_http_on_loopback_is_accepted_in_development_only(client, settings):
    agency = await new_agency(client)
    assert settings.environment == "test"
    response = await client.patch(
        BRANDING, json={"app_base_url": "http://127.0.0.1:5173"}, headers=agency.owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["app_base_url"] == "http://127.0.0.1:5173"
    with pytest.raises(InvalidFields):
        app_address("http://127.0.0.1:5173", "production")


async def test_two_first_uploads_at_once_both_succeed_one_after_the_other(client):
    """No branding row yet: two owners' uploads at the same moment must not both try to create
    it (a duplicate key would be a 500); the later one wins, at version 2."""
    agency = await new_agency(client)
    for _ in range(3):
        fresh = await new_agency(client)
        answers = await asyncio.gather(
            put_logo(client, fresh, image_bytes(color="navy")),
            put_logo(client, fresh, image_bytes(color="crimson")),
            client.patch(
                BRANDING, json={"app_base_url": "https://a.example"}, headers=fresh.owner.headers
            ),
        )
        assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
        final = await branding_of(client, fresh)
        assert final["version"] == 3 and final["app_base_url"] == "https://a.example"
        assert final["logo_url"] in {a.json()["logo_url"] for a in answers[:2]}
    assert (await branding_of(client, agency))["version"] == 0
