"""The app serves its routes as one flat table (api/routing.py): what FastAPI's tree of
included routers would serve, in the same order, documented the same way."""

from __future__ import annotations

import json

import httpx
from fastapi.routing import iter_route_contexts

from api.app import create_app
from infra.settings import Settings


def _served(app) -> list[tuple[str, tuple[str, ...]]]:
    return [
        (context.path, tuple(sorted(context.methods or ())))
        for context in iter_route_contexts(app.router.routes)
    ]


def test_the_flat_table_serves_what_the_router_tree_serves_in_the_same_order():
    settings = Settings()
    tree, flat = create_app(settings, flat=False), create_app(settings)
    assert len(flat.router.routes) == len(_served(tree)) > 150
    assert _served(flat) == _served(tree)


def test_the_openapi_document_is_the_same_byte_for_byte():
    settings = Settings()
    tree, flat = create_app(settings, flat=False), create_app(settings)
    assert json.dumps(flat.openapi()) == json.dumps(tree.openapi())


async def test_the_v1_routers_dependencies_still_run_on_each_route():
    # /v1's own dependency (require_json) refuses a body that is not JSON, before the route's.
    app = create_app(Settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        refused = await client.post(
            "/v1/auth/login", content=b"email=a", headers={"content-type": "text/plain"}
        )
    assert refused.status_code == 415, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
