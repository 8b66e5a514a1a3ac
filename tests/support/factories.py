"""Build agencies and people through the real API and services (nothing is mocked)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from infra.db import Database
from infra.security import Passwords
from tenants.models import Client, Membership, Role, User

PASSWORD = "correct-horse-battery"


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Person:
    user_id: uuid.UUID
    email: str
    role: str
    access_token: str
    refresh_token: str
    membership_id: uuid.UUID | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class Agency:
    tenant_id: uuid.UUID
    slug: str
    owner: Person
    people: dict[str, Person] = field(default_factory=dict)


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, tenant: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"email": email, "password": password}
    if tenant:
        body["tenant"] = tenant
    response = await client.post("/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def signup_body(slug: str | None = None, email: str | None = None, **overrides: Any) -> dict:
    """A valid POST /v1/auth/signup body for a new, unique agency."""
    slug = slug or unique("agency")
    return {
        "agency_name": f"Agence {slug}",
        "slug": slug,
        "timezone": "America/Montreal",
        "locale": "fr-CA",
        "currency": "CAD",
        "owner_name": "Owner",
        "email": email or f"{slug}-owner@example.com",
        "password": PASSWORD,
        **overrides,
    }


async def new_agency(client: httpx.AsyncClient, **overrides: Any) -> Agency:
    body = signup_body(**overrides)
    slug, email = body["slug"], body["email"]
    response = await client.post("/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    tokens = response.json()
    me = (
        await client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    ).json()
    owner = Person(
        user_id=uuid.UUID(me["user"]["id"]),
        email=email,
        role="owner",
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )
    return Agency(tenant_id=uuid.UUID(tokens["tenant"]["id"]), slug=slug, owner=owner)


async def add_person(
    client: httpx.AsyncClient,
    db: Database,
    passwords: Passwords,
    agency: Agency,
    role: Role | str,
    *,
    name: str | None = None,
    client_id: uuid.UUID | None = None,
) -> Person:
    """An active member with a password, created directly (as the app role), then logged in."""
    role = Role(role)
    email = f"{unique(role.value)}@example.com"
    async with db.tenant_transaction(agency.tenant_id) as session:
        user = User(email=email, name=name or email, password_hash=await passwords.hash(PASSWORD))
        session.add(user)
        if role == Role.client and client_id is None:
            contact_of = Client(
                tenant_id=agency.tenant_id,
                name=f"Client of {email}",
                locale="fr-CA",
                currency="CAD",
            )
            session.add(contact_of)
            client_id = contact_of.id
        await session.flush()
        membership = Membership(
            tenant_id=agency.tenant_id,
            user_id=user.id,
            role=role,
            client_id=client_id if role == Role.client else None,
        )
        session.add(membership)
        user_id, membership_id = user.id, membership.id
    tokens = await login(client, email)
    person = Person(
        user_id=user_id,
        email=email,
        role=role.value,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        membership_id=membership_id,
    )
    agency.people[f"{role.value}:{email}"] = person
    return person


async def make_client(
    client: httpx.AsyncClient, headers: dict[str, str], name: str | None = None, **fields: Any
) -> dict:
    response = await client.post(
        "/v1/clients", json={"name": name or unique("Client"), **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def make_brand(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    client_id: str,
    name: str | None = None,
    slug: str | None = None,
    **fields: Any,
) -> dict:
    response = await client.post(
        "/v1/brands",
        json={
            "client_id": client_id,
            "name": name or unique("Brand"),
            "slug": slug or unique("brand"),
            **fields,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def walk(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> list[dict]:
    """Every item of a list, following cursors; fails if a page repeats forever."""
    items: list[dict] = []
    query: dict[str, Any] = {"limit": 200, **params}
    for _ in range(50):
        response = await client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]
    raise AssertionError("the cursor never ends")


async def make_post(
    client: httpx.AsyncClient, headers: dict[str, str], brand_id: str, **fields: Any
) -> dict:
    """A draft content item on a brand (time can then be logged against it)."""
    body = {"title": unique("Post"), "variants": {"instagram": "Bonjour"}, **fields}
    response = await client.post(f"/v1/brands/{brand_id}/content", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@dataclass
class World:
    """A seeded agency, seen by its owner: its clients, brands and people by name, and the ids of
    whatever else a test made. Modules build it their own way (new_world for the common case: one
    client and its brands); the first client and the first brand are `customer` and `brand`."""

    agency: Agency
    clients: dict[str, dict] = field(default_factory=dict)
    brands: dict[str, dict] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    """Ids of other objects, by kind."""

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.agency.tenant_id

    @property
    def owner(self) -> Person:
        return self.agency.owner

    @property
    def boss(self) -> dict[str, str]:
        return self.agency.owner.headers

    @property
    def customer(self) -> dict:
        return next(iter(self.clients.values()))

    @property
    def brand(self) -> dict:
        return next(iter(self.brands.values()))

    @property
    def manager(self) -> Person:
        return self.people["manager"]

    @property
    def member(self) -> Person:
        return self.people["member"]


async def new_world(
    client: httpx.AsyncClient,
    *,
    customer: dict[str, Any] | None = None,
    brands: dict[str, dict[str, Any]] | None = None,
    **agency_fields: Any,
) -> World:
    """A new agency (signup fields as given) with one client (its fields in `customer`) and that
    client's brands, made in order (name -> fields; one brand when not given)."""
    agency = await new_agency(client, **agency_fields)
    world = World(agency)
    world.clients["customer"] = await make_client(client, world.boss, **(customer or {}))
    for key, fields in (brands or {"brand": {}}).items():
        world.brands[key] = await make_brand(client, world.boss, world.customer["id"], **fields)
    return world
