"""Where portal page tests start: a client contact of a new agency whose plan includes the
client portal, and plain HTTP "browsers" (a cookie jar each, from an address of their own)
that post forms as the pages do, with their CSRF token."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from infra.db import Database
from infra.security import Passwords
from tests.support.factories import Person, World, add_person, new_world
from tests.support.partners import set_plan


async def portal_contact(
    client: httpx.AsyncClient,
    db: Database,
    passwords: Passwords,
    *,
    plan: str = "agency",
    **world_fields: Any,
) -> tuple[World, Person]:
    """A new agency on `plan` (the portal is in "agency"), its client (`customer=` fields) and
    brands (`brands=`), and a signed-up contact of that client."""
    world = await new_world(client, **world_fields)
    await set_plan(db, world.agency, plan)
    contact = await add_person(
        client, db, passwords, world.agency, "client", client_id=uuid.UUID(world.customer["id"])
    )
    return world, contact


def open_browser(
    app: FastAPI, browsers: list[httpx.AsyncClient], **headers: str
) -> httpx.AsyncClient:
    """A browser of its own (cookie jar), from its own address, so that one test's failed
    sign-ins never count against another's. `browsers` (the fixture) closes it."""
    host = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    transport = httpx.ASGITransport(app=app.state.asgi, client=(host, 40000))
    browser = httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)
    browsers.append(browser)
    return browser


async def csrf(browser: httpx.AsyncClient) -> str:
    """The CSRF token the browser's cookie carries (any page sets it; sign-in is always open)."""
    if "passerelle_csrf" not in browser.cookies:
        await browser.get("/portal/sign-in")
    return str(browser.cookies["passerelle_csrf"])


async def post(browser: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    """The form as the page sends it."""
    return await browser.post(path, data={"csrf": await csrf(browser), **fields})
