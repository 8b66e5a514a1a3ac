"""OpenAPI links: which response's ids feed which operation's parameters.

A link says "the `id` of this response is the `client_id` of that operation". Generated
clients may ignore them; schemathesis' stateful phase follows them to chain calls (create a
client, then a brand for it, then content on the brand, then a decision on that content) and
so reaches objects that random ids never would.

The table below says, for each operation that returns ids, which ids its body carries and
where. Every link is derived from it: a link goes from a carrier to each operation that takes
the carrier's own id (as a path parameter or a body field, `<name>s` lists included), provided
the carrier also holds every other known id in that operation's path. When the carrier returns
one versioned object, the link also passes its ETag as `If-Match`. Adding a route needs no
edit here; adding a kind of object needs one line.

A link's `requestBody` holds only the fields it fills (`{"client_id": "$response.body#/id"}`):
schemathesis merges them into the body it generates; a tool reading the link literally would
send only those fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Carrier:
    own: str
    """The name operations give the id of the object this response returns."""
    ids: Mapping[str, str] = field(default_factory=dict)
    """Every id the object carries, by the name operations give it, as a JSON pointer into
    the object (the own id included)."""
    many: bool = False
    """A list (a page's `items` or a bare array): the pointers apply to its first element."""

    @property
    def own_names(self) -> frozenset[str]:
        """Every name of the object's own id (content is `content_id` in a path and
        `content_item_id` in a time entry)."""
        return frozenset(
            name for name, pointer in self.ids.items() if pointer == self.ids[self.own]
        )


def _object(own: str, pointer: str = "/id", **related: str) -> Carrier:
    return Carrier(own=own, ids={own: pointer, **related})


def _first(own: str, pointer: str = "/id", **related: str) -> Carrier:
    return Carrier(own=own, ids={own: pointer, **related}, many=True)


def _each(carrier: Carrier, *operation_ids: str) -> dict[str, Carrier]:
    return dict.fromkeys(operation_ids, carrier)


CLIENT = _object("client_id")
BRAND = _object("brand_id", client_id="/client_id")
MEMBER = _object("user_id", "/user_id")
ASSIGNMENT = _object("assignment_id", brand_id="/brand_id", user_id="/user_id")
RETAINER = _object("retainer_id", client_id="/client_id")
RATE = _object("rate_id")
ENTRY = _object("entry_id", brand_id="/brand_id", content_item_id="/content_item_id")
TEMPLATE = _object("template_id")
CONTENT = _object(
    "content_id",
    content_item_id="/id",
    brand_id="/brand_id",
    template_id="/template_id",
    revision_id="/revision/id",
    base="/revision/number",
    head="/revision/number",
)
INVOICE = _object("invoice_id", line_id="/lines/0/id", client_id="/client_id")
SOCIAL_ACCOUNT = _object("account_id", social_account_id="/id", brand_id="/brand_id")
PARTNER_APP = _object("app_id")
WEBHOOK_ENDPOINT = _object("endpoint_id")
WEBHOOK_DELIVERY = _object("delivery_id", endpoint_id="/endpoint_id")
TOKENS = _object("refresh_token", "/refresh_token")

CARRIERS: dict[str, Carrier] = {
    **_each(TOKENS, "signup", "login", "refresh"),
    "get_me": _object("user_id", "/user/id"),
    "list_members": _first("user_id", "/user_id"),
    **_each(MEMBER, "get_member", "update_member"),
    **_each(CLIENT, "create_client", "get_client", "update_client"),
    "list_clients": _first("client_id"),
    **_each(BRAND, "create_brand", "get_brand", "update_brand"),
    "list_brands": _first("brand_id", client_id="/client_id"),
    **_each(ASSIGNMENT, "create_assignment", "get_assignment", "update_assignment"),
    "list_assignments": _first("assignment_id", brand_id="/brand_id", user_id="/user_id"),
    **_each(RETAINER, "create_retainer", "get_retainer", "update_retainer"),
    "list_retainers": _first("retainer_id", client_id="/client_id"),
    **_each(RATE, "create_rate", "update_rate"),
    "list_rates": _first("rate_id"),
    **_each(ENTRY, "create_time_entry", "get_time_entry", "update_time_entry"),
    "list_time_entries": _first("entry_id", brand_id="/brand_id"),
    "stop_timer": _object("entry_id", "/entries/0/id", brand_id="/entries/0/brand_id"),
    **_each(TEMPLATE, "create_workflow_template", "get_workflow_template"),
    "replace_workflow_template": TEMPLATE,
    "list_workflow_templates": _first("template_id"),
    **_each(
        CONTENT,
        "create_content",
        "get_content",
        "update_content",
        "submit_content",
        "schedule_content",
        "unschedule_content",
    ),
    "list_brand_content": _first("content_id", content_item_id="/id", brand_id="/brand_id"),
    "calendar": _first("content_id", content_item_id="/id", brand_id="/brand_id"),
    **_each(
        INVOICE,
        "create_invoice",
        "get_invoice",
        "update_invoice",
        "add_invoice_line",
        "update_invoice_line",
        "delete_invoice_line",
        "refresh_invoice",
        "finalize_invoice",
        "void_invoice",
        "create_credit_note",
    ),
    "list_invoices": _first("invoice_id", client_id="/client_id"),
    **_each(SOCIAL_ACCOUNT, "get_social_account", "update_social_account"),
    "list_social_accounts": _first("account_id", social_account_id="/id", brand_id="/brand_id"),
    **_each(
        PARTNER_APP,
        "create_partner_app",
        "get_partner_app",
        "update_partner_app",
        "rotate_partner_app_secret",
    ),
    "list_partner_apps": _first("app_id"),
    **_each(
        WEBHOOK_ENDPOINT,
        "create_webhook_endpoint",
        "get_webhook_endpoint",
        "update_webhook_endpoint",
        "rotate_webhook_endpoint_secret",
    ),
    "list_webhook_endpoints": _first("endpoint_id"),
    **_each(WEBHOOK_DELIVERY, "get_webhook_delivery", "replay_webhook_delivery"),
    "list_webhook_deliveries": _first("delivery_id", endpoint_id="/endpoint_id"),
}

# Every name the table knows: a path parameter by one of these names takes a real id.
KNOWN_IDS = frozenset(name for carrier in CARRIERS.values() for name in carrier.ids)
# Body fields named like an id of the table that hold something else.
NOT_OUR_IDS = frozenset({("set_connected_account", "account_id")})  # a Stripe account


def install(app: FastAPI) -> None:
    """Wrap `app.openapi` (as built so far) so that the document carries the links."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        return add_links(build())

    app.openapi = openapi  # type: ignore[method-assign]


def add_links(document: dict[str, Any]) -> dict[str, Any]:
    """Add the links of `CARRIERS` to the success responses of `document`, in place."""
    operations = {
        operation["operationId"]: operation
        for item in document.get("paths", {}).values()
        for method, operation in item.items()
        if method in _METHODS and "operationId" in operation
    }
    for source_id, carrier in CARRIERS.items():
        source = operations.get(source_id)
        if source is None:
            continue
        response = _success_response(source)
        if response is None:
            continue
        schema = _resolve(document, _json_schema(response))
        prefix = _first_element(document, schema) if carrier.many else ""
        if prefix is None:
            continue
        versioned = not carrier.many and "version" in schema.get("properties", {})
        links = {
            f"{target_id}": link
            for target_id, target in operations.items()
            if (link := _link(document, carrier, prefix, versioned, target_id, target))
        }
        if links:
            response.setdefault("links", {}).update(links)
    return document


def _link(
    document: dict[str, Any],
    carrier: Carrier,
    prefix: str,
    versioned: bool,
    target_id: str,
    target: dict[str, Any],
) -> dict[str, Any] | None:
    parameters = target.get("parameters", [])
    path_ids = [p["name"] for p in parameters if p["in"] == "path" and p["name"] in KNOWN_IDS]
    if any(name not in carrier.ids for name in path_ids):
        return None
    body = _body_links(document, carrier, prefix, target_id, target)
    mentioned = {*path_ids, *(_singular(name) for name in body)}
    if not mentioned & carrier.own_names:
        return None
    link: dict[str, Any] = {"operationId": target_id}
    values = {f"path.{name}": _expression(prefix, carrier.ids[name]) for name in path_ids}
    takes_if_match = any(
        p["in"] == "header" and p["name"].lower() == "if-match" for p in parameters
    )
    if versioned and takes_if_match and path_ids and path_ids[-1] in carrier.own_names:
        values["header.If-Match"] = "$response.header.ETag"
    if values:
        link["parameters"] = values
    if body:
        link["requestBody"] = body
    return link


def _body_links(
    document: dict[str, Any],
    carrier: Carrier,
    prefix: str,
    target_id: str,
    target: dict[str, Any],
) -> dict[str, Any]:
    """The fields of the target's JSON body that the carrier can fill: `brand_id` with a
    brand's id, `brand_ids` with a list of one."""
    content = target.get("requestBody", {}).get("content", {})
    schema = _object_schema(document, content.get("application/json", {}).get("schema", {}))
    filled: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if (target_id, name) in NOT_OUR_IDS:
            continue
        singular = _singular(name)
        if singular in carrier.ids and _accepts(document, prop, "array") and singular != name:
            filled[name] = [_expression(prefix, carrier.ids[singular])]
        elif name in carrier.ids and _accepts(document, prop, "string"):
            filled[name] = _expression(prefix, carrier.ids[name])
    return filled


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("_ids") else name


def _expression(prefix: str, pointer: str) -> str:
    return f"$response.body#{prefix}{pointer}"


def _success_response(operation: dict[str, Any]) -> dict[str, Any] | None:
    for status, response in sorted(operation.get("responses", {}).items()):
        if str(status).startswith("2"):
            found: dict[str, Any] = response
            return found
    return None


def _json_schema(response: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = (
        response.get("content", {}).get("application/json", {}).get("schema", {})
    )
    return schema


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        return resolved
    return schema


def _object_schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The object a body schema describes (an optional body is `anyOf [model, null]`)."""
    schema = _resolve(document, schema)
    if "properties" in schema:
        return schema
    for option in schema.get("anyOf", []):
        candidate = _resolve(document, option)
        if "properties" in candidate:
            return candidate
    return {}


def _first_element(document: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """Pointer prefix of a list's first element: a page's `/items/0`, or a bare array's `/0`."""
    if schema.get("type") == "array":
        return "/0"
    if "items" in schema.get("properties", {}):
        return "/items/0"
    return None


def _accepts(document: dict[str, Any], schema: dict[str, Any], kind: str) -> bool:
    schema = _resolve(document, schema)
    if schema.get("type") == kind:
        return True
    return any(_accepts(document, option, kind) for option in schema.get("anyOf", []))
