"""Exports as an owner sees them: asked for, written by the real worker, downloaded through a
signed link; what they hold (a client's export holds only that client), what they never hold
(secrets), and who may ask."""

from __future__ import annotations

import base64
import io
import json
import uuid
import zipfile
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import text

from infra.clock import utcnow
from tenants.models import Role
from tests.support.factories import add_person, login, make_brand, make_client, new_world
from tests.support.publishing import approved_item, platform_account
from tests.support.worker import run_due_jobs


async def _export(client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]):
    response = await client.post("/v1/exports", json=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return response.json()


async def _finished(client, settings, headers, export_id: str) -> dict[str, Any]:
    await run_due_jobs(settings)
    response = await client.get(f"/v1/exports/{export_id}", headers=headers)
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["status"] == "done", found
    return found


async def _link(client, headers, export_id: str) -> str:
    response = await client.post(f"/v1/exports/{export_id}/link", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["url"])


async def _download(client: httpx.AsyncClient, url: str) -> zipfile.ZipFile:
    parts = urlsplit(url)
    response = await client.get(parts.path + "?" + parts.query)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.content))


def _rows(archive: zipfile.ZipFile, kind: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in archive.read(f"{kind}.ndjson").splitlines()]


async def _seed(client, db, resources, platforms, media_server):
    """An agency with two clients, each with a brand, content (with media for the first), a
    social account with encrypted tokens, and the agency's partner app and webhook endpoint."""
    world = await new_world(client)
    other = await make_client(client, world.boss)
    world.clients["other"] = other
    world.brands["other_brand"] = await make_brand(client, world.boss, other["id"])
    account, _ = await platform_account(db, resources, platforms, world, "x")
    other_account, _ = await platform_account(
        db, resources, platforms, world, "x", brand="other_brand"
    )
    media = [{"type": "image", "url": f"{media_server.url}/image.png?w=640&h=480"}]
    item = await approved_item(client, world, [account], media=media)
    other_item = await approved_item(client, world, [other_account], brand="other_brand")
    response = await client.post(
        "/v1/partner-apps", json={"name": "Partner", "scopes": ["brands:read"]}, headers=world.boss
    )
    assert response.status_code == 201, response.text
    secret = response.json()["client_secret"]
    world.ids.update(item=item, other_item=other_item, partner_secret=secret)
    response = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["invoice.finalized"]},
        headers=world.boss,
    )
    assert response.status_code == 201, response.text
    world.ids["webhook_secret"] = str(response.json()["secret"])
    return world


async def _secret_values(db, tenant_id: uuid.UUID) -> list[bytes]:
    """The stored values of every declared secret column of the agency, in every form an
    export could show them (text, hex as Postgres renders bytea, base64)."""
    from privacy.scope import SECRET_COLUMNS

    found: list[bytes] = []
    async with db.tenant_transaction(tenant_id) as session:
        for table, columns in SECRET_COLUMNS.items():
            for column in columns:
                rows = await session.execute(
                    text(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")
                )
                for (value,) in rows:
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    found += [raw, raw.hex().encode(), base64.b64encode(raw)]
    return [v for v in found if len(v) >= 16]


async def test_an_agency_export_holds_every_kind_and_no_secret(
    client, db, resources, settings, platforms, media_server
):
    world = await _seed(client, db, resources, platforms, media_server)
    created = await _export(client, world.boss, {})
    assert created["scope"] == "agency"
    done = await _finished(client, settings, world.boss, created["id"])
    progress = done["progress"]
    assert progress["kinds_done"] == progress["kinds_total"] > 30
    assert progress["media_files"] == 1

    archive = await _download(client, await _link(client, world.boss, created["id"]))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest == done["manifest"]
    assert manifest["tenant_id"] == str(world.tenant_id)
    assert manifest["scope"] == {"kind": "agency"}
    # The manifest matches the files, row for row and byte for byte.
    import hashlib

    for entry in manifest["files"]:
        if entry["kind"] == "media":
            for media in entry["files"]:
                data = archive.read(media["name"])
                assert hashlib.sha256(data).hexdigest() == media["sha256"]
                assert len(data) == media["bytes"]
            continue
        data = archive.read(entry["name"])
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data.splitlines()) == entry["rows"]
    assert (
        sum(e["rows"] for e in manifest["files"] if e["kind"] != "media")
        == progress["rows_written"]
    )
    assert {r["id"] for r in _rows(archive, "clients")} == {c["id"] for c in world.clients.values()}
    assert world.ids["item"] in {r["id"] for r in _rows(archive, "content_items")}
    assert "refresh_tokens.ndjson" not in archive.namelist()
    # Who belongs to the agency (accounts are global: no tenant table holds their address).
    assert world.agency.owner.email in {p["email"] for p in _rows(archive, "people")}
    [account] = [r for r in _rows(archive, "social_accounts") if r["brand_id"] == world.brand["id"]]
    assert "access_token" not in account and "refresh_token" not in account

    # No secret of the agency, in any form, anywhere in the ZIP.
    secrets = [
        *await _secret_values(db, world.tenant_id),
        world.ids["partner_secret"].encode(),
        world.ids["webhook_secret"].encode(),
    ]
    assert len(secrets) >= 6
    for name in archive.namelist():
        data = archive.read(name)
        for secret in secrets:
            assert secret not in data, (name, secret[:8])

    # Asked for, link issued, downloaded: in the audit log.
    async with db.tenant_transaction(world.tenant_id) as session:
        actions = (
            (
                await session.execute(
                    text(
                        "SELECT action FROM audit_events WHERE subject_id = :id ORDER BY created_at"
                    ),
                    {"id": uuid.UUID(created["id"])},
                )
            )
            .scalars()
            .all()
        )
    assert actions == [
        "export.requested",
        "export.completed",
        "export.link_issued",
        "export.downloaded",
    ]


async def test_a_client_export_holds_only_that_client(
    client, db, resources, settings, platforms, media_server
):
    world = await _seed(client, db, resources, platforms, media_server)
    contact = await add_person(
        client,
        db,
        resources.passwords,
        world.agency,
        Role.client,
        name="Josée Tremblay",
        client_id=uuid.UUID(world.customer["id"]),
    )
    other_contact = await add_person(
        client,
        db,
        resources.passwords,
        world.agency,
        Role.client,
        client_id=uuid.UUID(world.clients["other"]["id"]),
    )
    created = await _export(client, world.boss, {"client_id": world.customer["id"]})
    assert created["scope"] == "client"
    await _finished(client, settings, world.boss, created["id"])
    archive = await _download(client, await _link(client, world.boss, created["id"]))

    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["scope"] == {"kind": "client", "client_id": world.customer["id"]}
    print(json.dumps(manifest))  # shown with -s: what an owner receives
    names = set(archive.namelist())
    assert "partner_apps.ndjson" not in names and "audit_events.ndjson" not in names
    assert [r["id"] for r in _rows(archive, "clients")] == [world.customer["id"]]
    assert [r["id"] for r in _rows(archive, "brands")] == [world.brand["id"]]
    assert [r["id"] for r in _rows(archive, "content_items")] == [world.ids["item"]]
    assert {r["content_item_id"] for r in _rows(archive, "content_revisions")} == {
        world.ids["item"]
    }
    assert len(_rows(archive, "social_accounts")) == 1
    assert any(n.startswith("media/") for n in names)
    # The client's people, by name and address, and not the agency's staff.
    [person] = _rows(archive, "people")
    assert (person["email"], person["name"]) == (contact.email, "Josée Tremblay")
    assert [m["client_id"] for m in person["memberships"]] == [world.customer["id"]]
    assert "password_hash" not in person
    # Nothing of the other client, anywhere.
    other = [
        world.clients["other"]["id"],
        world.brands["other_brand"]["id"],
        world.ids["other_item"],
        other_contact.email,
    ]
    for name in names:
        data = archive.read(name).decode(errors="replace")
        for value in other:
            assert value not in data, (name, value)


async def test_the_link_expires_and_a_forged_one_fails(
    client, db, resources, settings, platforms, media_server, clock
):
    world = await new_world(client)
    created = await _export(client, world.boss, {})
    await _finished(client, settings, world.boss, created["id"])
    url = await _link(client, world.boss, created["id"])
    parts = urlsplit(url)
    token = parse_qs(parts.query)["token"][0]

    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    other = await new_world(client)
    forged_claims = {**claims, "tid": str(other.tenant_id)}
    forged = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    for bad in (f"{head}.{forged}.{signature}", token[:-4] + "AAAA", "x"):
        response = await client.get(parts.path, params={"token": bad})
        assert response.status_code == 403, response.text
        assert response.json()["type"].endswith("/export-link-invalid")

    clock.set(utcnow() + timedelta(seconds=settings.export_link_ttl_seconds + 5))
    response = await client.get(parts.path, params={"token": token})
    assert response.status_code == 403, response.text
    response = await client.get(parts.path)
    assert response.status_code == 422


async def test_only_owners_of_the_agency_see_its_exports(client, db, resources, settings):
    world = await new_world(client)
    created = await _export(client, world.boss, {})
    stranger = await new_world(client)
    for path in (f"/v1/exports/{created['id']}",):
        response = await client.get(path, headers=stranger.boss)
        assert response.status_code == 404, response.text
    response = await client.post(f"/v1/exports/{created['id']}/link", headers=stranger.boss)
    assert response.status_code == 404, response.text
    response = await client.get("/v1/exports", headers=stranger.boss)
    assert response.json()["items"] == []
    response = await client.post(
        "/v1/exports", json={"client_id": world.customer["id"]}, headers=stranger.boss
    )
    assert response.status_code == 422, response.text

    for role in (Role.admin, Role.manager, Role.member):
        person = await add_person(client, db, resources.passwords, world.agency, role)
        for method, path in (
            ("POST", "/v1/exports"),
            ("GET", "/v1/exports"),
            ("GET", f"/v1/exports/{created['id']}"),
            ("POST", f"/v1/exports/{created['id']}/link"),
        ):
            body = {} if path == "/v1/exports" and method == "POST" else None
            response = await client.request(method, path, json=body, headers=person.headers)
            assert response.status_code == 403, (role, method, path, response.text)
    # Not finished yet: no link.
    response = await client.post(f"/v1/exports/{created['id']}/link", headers=world.boss)
    assert response.status_code == 409, response.text


async def test_the_same_idempotency_key_asks_for_one_export(client):
    world = await new_world(client)
    headers = {**world.boss, "Idempotency-Key": f"export-{uuid.uuid4()}"}
    first = await client.post("/v1/exports", json={}, headers=headers)
    again = await client.post("/v1/exports", json={}, headers=headers)
    assert first.status_code == again.status_code == 202, again.text
    assert again.json()["id"] == first.json()["id"]
    response = await client.get("/v1/exports", headers=world.boss)
    assert [e["id"] for e in response.json()["items"]] == [first.json()["id"]]


async def test_an_export_expires_and_its_file_is_deleted(client, db, resources, settings, clock):
    from privacy.export import file_path
    from privacy.jobs import sweep_exports

    world = await new_world(client)
    created = await _export(client, world.boss, {})
    done = await _finished(client, settings, world.boss, created["id"])
    path = file_path(settings, world.tenant_id, uuid.UUID(created["id"]))
    assert path.is_file()

    ctx = {"db": db, "settings": settings, "redis": resources.queue}
    clock.set(utcnow() + timedelta(days=settings.export_ttl_days) - timedelta(minutes=5))
    await sweep_exports(ctx)
    assert path.is_file()
    clock.set(utcnow() + timedelta(minutes=10))
    await sweep_exports(ctx)
    assert not path.exists()
    # A week later: the owner signs in again.
    tokens = await login(client, world.owner.email)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    response = await client.get(f"/v1/exports/{created['id']}", headers=headers)
    assert response.json()["status"] == "expired"
    assert response.json()["expires_at"] == done["expires_at"]
    response = await client.post(f"/v1/exports/{created['id']}/link", headers=headers)
    assert response.status_code == 409, response.text
