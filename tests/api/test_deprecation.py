"""The deprecation policy: a deprecated operation still works, says so in its headers
(Deprecation, RFC 9745; Sunset, RFC 8594; Link to the policy and successor), and the OpenAPI
document marks it, while other operations stay silent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from asgi_lifespan import LifespanManager

from api.app import create_app
from api.deprecations import DEPRECATIONS, POLICY_URL, Deprecation
from tests.support.factories import new_agency

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
SUNSET = datetime(2027, 6, 1, tzinfo=UTC)


@pytest.fixture
async def deprecating_client(settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(
        settings,
        deprecations={"list_clients": Deprecation(SINCE, SUNSET, successor="/v2/clients")},
    )
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            c.app = application  # type: ignore[attr-defined]
            yield c


async def test_a_deprecated_operation_works_and_announces_its_sunset(deprecating_client):
    agency = await new_agency(deprecating_client)
    response = await deprecating_client.get("/v1/clients", headers=agency.owner.headers)
    assert response.status_code == 200, response.text
    assert response.headers["Deprecation"] == f"@{int(SINCE.timestamp())}"
    assert response.headers["Sunset"] == "Tue, 01 Jun 2027 00:00:00 GMT"
    links = response.headers["Link"]
    assert f'<{POLICY_URL}>; rel="deprecation"' in links
    assert '</v2/clients>; rel="successor-version"' in links


async def test_errors_of_a_deprecated_operation_carry_the_headers_too(deprecating_client):
    response = await deprecating_client.get(
        "/v1/clients", headers={"Authorization": "Bearer not-a-token"}
    )
    assert response.status_code == 401
    assert response.headers["Sunset"] == "Tue, 01 Jun 2027 00:00:00 GMT"


async def test_other_operations_carry_no_deprecation(deprecating_client):
    agency = await new_agency(deprecating_client)
    response = await deprecating_client.get("/v1/brands", headers=agency.owner.headers)
    assert response.status_code == 200
    assert "Deprecation" not in response.headers
    assert "Sunset" not in response.headers


async def test_openapi_marks_only_the_deprecated_operation(deprecating_client):
    document = (await deprecating_client.get("/openapi.json")).json()
    flagged = {
        operation["operationId"]: operation.get("x-sunset")
        for operations in document["paths"].values()
        for operation in operations.values()
        if operation.get("deprecated")
    }
    assert flagged == {"list_clients": "2027-06-01"}


async def test_the_live_api_deprecates_nothing_yet(client):
    document = (await client.get("/openapi.json")).json()
    deprecated = [
        operation["operationId"]
        for operations in document["paths"].values()
        for operation in operations.values()
        if operation.get("deprecated")
    ]
    assert deprecated == sorted(DEPRECATIONS)
