from tests.support.factories import new_agency


async def test_signup_then_me(client):
    agency = await new_agency(client)
    response = await client.get("/v1/me", headers=agency.owner.headers)
    assert response.status_code == 200
    assert response.json()["tenant"]["slug"] == agency.slug
    assert response.json()["role"] == "owner"
