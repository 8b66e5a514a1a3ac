"""The platform client is shared by every tenant's requests: nothing one tenant's answer set
may ride along on another's request."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from infra.resources import platform_client
from tests.support.served import served


async def _answer_with_a_cookie(request: Request) -> JSONResponse:
    response = JSONResponse({"tenant": request.query_params["tenant"]})
    response.set_cookie("lb_affinity", f"node-of-{request.query_params['tenant']}")
    return response


async def _echo_cookies(request: Request) -> JSONResponse:
    return JSONResponse({"cookie": request.headers.get("cookie")})


PLATFORM = Starlette(
    routes=[Route("/answer", _answer_with_a_cookie), Route("/echo", _echo_cookies)]
)


async def _cookie_seen_after_another_tenants_answer(client: httpx.AsyncClient, base: str) -> object:
    async with client:
        await client.get(f"{base}/answer", params={"tenant": "a"})
        return (await client.get(f"{base}/echo")).json()["cookie"]


async def test_a_cookie_one_tenants_answer_set_is_not_sent_with_the_next_request(settings):
    async with served(PLATFORM) as base:
        # What a plain client does, the platform below is able to show.
        assert await _cookie_seen_after_another_tenants_answer(httpx.AsyncClient(), base) == (
            "lb_affinity=node-of-a"
        )
        client = platform_client(settings)
        assert await _cookie_seen_after_another_tenants_answer(client, base) is None
        assert not client.cookies
