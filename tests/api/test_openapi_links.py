"""The OpenAPI links of api/openapi_links.py: the table names real operations and real
fields, every id a path takes has a source, and schemathesis reads every link."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import schemathesis

from api.openapi_links import CARRIERS, KNOWN_IDS
from tests.support.walk import route_table_app


@cache
def document() -> dict[str, Any]:
    return route_table_app().openapi()


def operations() -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for item in document()["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return resolve(document()["components"]["schemas"][ref.rsplit("/", 1)[-1]])
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return resolve(option)
    return schema


def schema_at(schema: dict[str, Any], pointer: str) -> dict[str, Any] | None:
    """The schema of the value at a JSON pointer, or None when the pointer cannot exist."""
    node = resolve(schema)
    for part in pointer.strip("/").split("/"):
        if node.get("type") == "array" and part.isdigit():
            node = resolve(node["items"])
        elif part in node.get("properties", {}):
            node = resolve(node["properties"][part])
        else:
            return None
    return node


def success_schema(operation: dict[str, Any]) -> dict[str, Any]:
    status = min(code for code in operation["responses"] if code.startswith("2"))
    content = operation["responses"][status]["content"]["application/json"]
    return dict(content["schema"])


@pytest.mark.parametrize("operation_id", sorted(CARRIERS))
def test_each_carrier_is_an_operation_whose_response_holds_the_ids_it_names(operation_id):
    operation = operations().get(operation_id)
    assert operation is not None, f"{operation_id} is not an operation of the API"
    carrier = CARRIERS[operation_id]
    schema = success_schema(operation)
    element = "/items/0" if "items" in resolve(schema).get("properties", {}) else "/0"
    for name, pointer in carrier.ids.items():
        found = schema_at(schema, (element if carrier.many else "") + pointer)
        assert found is not None, f"{operation_id} answers nothing at {pointer} for {name}"
        assert found.get("type") in ("string", "integer"), (name, found)


def test_every_id_a_path_takes_is_fed_by_a_link():
    fed = {
        link["operationId"]
        for operation in operations().values()
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    }
    unfed = sorted(
        operation_id
        for operation_id, operation in operations().items()
        if any(
            p["in"] == "path" and p["name"] in KNOWN_IDS for p in operation.get("parameters", [])
        )
        and operation_id not in fed
    )
    assert unfed == []


def test_links_pass_the_etag_of_the_object_they_change():
    links = operations()["create_client"]["responses"]["201"]["links"]
    assert links["update_client"] == {
        "operationId": "update_client",
        "parameters": {
            "path.client_id": "$response.body#/id",
            "header.If-Match": "$response.header.ETag",
        },
    }
    assert links["create_brand"] == {
        "operationId": "create_brand",
        "requestBody": {"client_id": "$response.body#/id"},
    }


def test_schemathesis_reads_every_link():
    # Raises InvalidStateMachine, naming the link, when one points at no operation.
    schemathesis.openapi.from_dict(document()).as_state_machine()
