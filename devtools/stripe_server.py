"""A local, in-memory Stripe API for tests, spoken to by the real ``stripe`` SDK over HTTP.

``StripeServer().start()`` serves on 127.0.0.1 (free port, ``.url``) from a daemon thread:

    http = stripe.HTTPXClient(timeout=2)  # keep it: StripeClient has no close()
    client = stripe.StripeClient(key, base_addresses={"api": server.url},
                                 max_network_retries=0, http_client=http)

* Bodies are parsed as the SDK encodes them (form, ``items[0][price]=p``, ``metadata[k]=v``,
  ``expand[0]=x``) into nested dicts/lists of strings; handlers coerce ints and booleans.
  Parameter names unknown to the SDK's own ``*Params`` TypedDicts get Stripe's 400
  ``parameter_unknown``; known but unmodelled ones (``expand`` too) are ignored.
* Objects are deep copies of Stripe's fixtures (fixtures3.json) with our fields set, and belong
  to the platform or to one connected account (``Stripe-Account``): read from elsewhere they
  are 404 ``resource_missing``. An account not registered with ``add_account`` is 403
  ``account_invalid`` (SDK: ``stripe.PermissionError``).
* Idempotency (POST only) is keyed by (account or platform, Idempotency-Key); only 2xx results
  are kept. Same method, path and parsed parameters: the stored bytes again with
  ``Idempotent-Replayed: true``, nothing changes. Otherwise 400 ``idempotency_error``. The SDK
  sends a fresh random key on EVERY POST: only an explicit key makes a retry a replay.
* ``fail_next(n, status)``: the next n requests (checked before auth) get that error, change
  nothing and store no key. ``delay_next(n, seconds)``: the next n requests sleep, then run
  normally, so a client that timed out still gets its change applied, like a slow Stripe.
* Requests run one at a time under a lock (the delay is slept outside it). API changes record
  events too (``customer.subscription.updated`` with ``previous_attributes``,
  ``invoice.finalized``, ``invoice.voided``): see ``events()``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import re
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import stripe
import stripe.params as sp
from stripe.params import billing_portal as bp
from stripe.params import checkout

FIXTURES = Path(os.environ.get("STRIPE_FIXTURES", "/work/shared/stripe/fixtures3.json"))
WEBHOOK_PATH = "/v1/billing/stripe/webhook"
DAY = 86_400
PRORATIONS = ("always_invoice", "create_prorations", "none")
Obj = dict[str, Any]
_OPTIONS = frozenset(stripe.RequestOptions.__annotations__)  # *Params TypedDicts inherit these

# Fixture fields that make no sense on a fresh object: reset to null.
_NULLS = {
    "customer": "address shipping discount currency description phone test_clock",
    "checkout.session": "subscription invoice payment_intent customer_details shipping_cost "
    "collected_information currency_conversion after_expiration total_details",
    "billing_portal.session": "flow locale",
    "subscription": "cancel_at canceled_at ended_at trial_start trial_end latest_invoice "
    "pending_update pause_collection transfer_data billing_cycle_anchor_config "
    "next_pending_invoice_item_invoice pending_invoice_item_interval test_clock",
    "subscription_item": "billing_thresholds",
    "invoice": "number effective_at hosted_invoice_url invoice_pdf subscription parent "
    "last_finalization_error next_payment_attempt webhooks_delivered_at from_invoice "
    "shipping_cost due_date",
    "invoiceitem": "parent test_clock",
}
# Parameters copied verbatim onto a new object.
_COPIED = {
    "customer": "email name description phone",
    "checkout.session": "mode customer customer_email client_reference_id success_url "
    "cancel_url locale",
    "billing_portal.session": "customer return_url locale",
    "invoiceitem": "customer description",
    "invoice": "customer description",
}


@cache
def _fixtures() -> dict[str, Obj]:
    resources: dict[str, Obj] = json.loads(FIXTURES.read_text())["resources"]
    return resources


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(
        secrets.choice(string.ascii_letters + string.digits) for _ in range(length)
    )


def _now() -> int:
    return int(time.time())


# ---------------------------------------------------------------- form bodies


def _split_key(key: str) -> list[str]:
    match = re.fullmatch(r"([^\[]+)((?:\[[^\]]*\])*)", key)
    if match is None:
        return [key]
    return [match.group(1), *re.findall(r"\[([^\]]*)\]", match.group(2))]


def _listify(node: Any, name: str = "") -> Any:
    if not isinstance(node, dict):
        return node
    node = {k: _listify(v, k) for k, v in node.items()}
    if name != "metadata" and node and all(k.isdigit() for k in node):
        return [node[k] for k in sorted(node, key=int)]
    return node


def parse_form(body: str) -> Obj:
    """``a[b][0][c]=1&expand[]=x`` -> ``{"a": {"b": [{"c": "1"}]}, "expand": ["x"]}``."""
    root: Obj = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        *path, last = _split_key(key)
        node = root
        for part in path:
            part = part or str(len(node))
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last or str(len(node))] = value
    parsed: Obj = _listify(root)
    return parsed


# ---------------------------------------------------------------- errors and coercion


@dataclass(eq=False)
class StripeError(Exception):
    status: int
    message: str
    code: str | None = None
    param: str | None = None
    type: str = "invalid_request_error"

    def body(self) -> Obj:
        fields = ("type", "code", "message", "param")
        return {"error": {k: getattr(self, k) for k in fields if getattr(self, k)}}


def _injected(status: int) -> StripeError:
    """A Stripe-shaped error the SDK maps to its class for ``status``."""
    codes = {402: "card_declined", 404: "resource_missing", 409: "lock_timeout", 429: "rate_limit"}
    type_ = "api_error" if status >= 500 else "card_error" if status == 402 else None
    message = f"Injected failure (HTTP {status})."
    return StripeError(status, message, codes.get(status), type=type_ or "invalid_request_error")


def _no_such(kind: str, obj_id: str, param: str = "id", status: int = 404) -> StripeError:
    label = kind.replace(".", " ").replace("_", " ")
    return StripeError(status, f"No such {label}: '{obj_id}'", "resource_missing", param)


def _invalid(message: str, param: str, code: str = "parameter_invalid") -> StripeError:
    return StripeError(400, message, code, param)


def _need(p: Mapping[str, Any], name: str, prefix: str = "") -> Any:
    if p.get(name) in (None, ""):
        param = f"{prefix}[{name}]" if prefix else name
        raise StripeError(400, f"Missing required param: {param}.", "parameter_missing", param)
    return p[name]


def _int(p: Mapping[str, Any], name: str, prefix: str = "") -> int | None:
    if p.get(name) in (None, ""):
        return None
    try:
        return int(p[name])
    except ValueError:
        param = f"{prefix}[{name}]" if prefix else name
        raise _invalid(f"Invalid integer: {p[name]}", param, "parameter_invalid_integer") from None


def _bool(p: Mapping[str, Any], name: str) -> bool | None:
    if p.get(name) is None:
        return None
    if p[name] not in ("true", "false"):
        raise _invalid(f"Invalid boolean: {p[name]}", name)
    return bool(p[name] == "true")


def _enum(p: Mapping[str, Any], name: str, choices: Iterable[str]) -> Any:
    if p.get(name) is not None and p[name] not in choices:
        raise _invalid(f"Invalid {name}: must be one of {', '.join(choices)}", name)
    return p.get(name)


def _as_list(value: Any, name: str) -> list[Any]:
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise _invalid(f"Invalid array: {name}", name)
    return value


def _merge_metadata(old: Mapping[str, str], new: Any) -> dict[str, str]:
    """Stripe semantics: keys merge, ``k=""`` deletes a key, ``metadata=""`` clears all."""
    if new is None or new == "":
        return dict(old) if new is None else {}
    if not isinstance(new, dict):
        raise _invalid("Invalid object", "metadata")
    merged = {**old, **new}
    return {k: v for k, v in merged.items() if v != ""}


def _allowed(params_class: type | None) -> frozenset[str]:
    if params_class is None:
        return frozenset({"expand"})
    return frozenset(params_class.__annotations__) - _OPTIONS


def _check_keys(p: Any, allowed: frozenset[str], prefix: str = "") -> None:
    if not isinstance(p, dict):
        raise _invalid(f"Invalid object: {prefix}", prefix)
    for name in p:
        if name not in allowed:
            full = f"{prefix}[{name}]" if prefix else name
            raise _invalid(f"Received unknown parameter: {full}", full, "parameter_unknown")


def _changed(before: Obj, after: Obj) -> Obj:
    return {k: before.get(k) for k in after if before.get(k) != after[k]}


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, indent=2).encode()


def _list_of(data: list[Obj], url: str) -> Obj:
    return {"object": "list", "data": data, "has_more": False, "total_count": len(data), "url": url}


# ---------------------------------------------------------------- records and routes


@dataclass(frozen=True)
class StripeCall:
    method: str
    path: str
    params: Obj
    account: str | None
    idempotency_key: str | None
    status: int
    replayed: bool


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: Obj
    account: str | None
    idempotency_key: str | None
    request_id: str

    def same(self, other: Request) -> bool:
        return (self.method, self.path, self.params) == (other.method, other.path, other.params)


_ROUTES = [
    (m, re.compile(pattern), handler, _allowed(params))
    for m, pattern, handler, params in [
        ("POST", r"/v1/customers", "_create_customer", sp.CustomerCreateParams),
        ("POST", r"/v1/checkout/sessions", "_create_checkout", checkout.SessionCreateParams),
        ("POST", r"/v1/billing_portal/sessions", "_create_portal", bp.SessionCreateParams),
        ("POST", r"/v1/subscriptions/(\w+)", "_update_subscription", sp.SubscriptionUpdateParams),
        ("DELETE", r"/v1/subscriptions/(\w+)", "_cancel_subscription", sp.SubscriptionCancelParams),
        ("GET", r"/v1/subscription_items/(\w+)", "_get_item", None),
        ("POST", r"/v1/subscription_items/(\w+)", "_update_item", sp.SubscriptionItemUpdateParams),
        ("POST", r"/v1/invoiceitems", "_create_invoiceitem", sp.InvoiceItemCreateParams),
        ("POST", r"/v1/invoices", "_create_invoice", sp.InvoiceCreateParams),
        ("POST", r"/v1/invoices/(\w+)/finalize", "_finalize", sp.InvoiceFinalizeInvoiceParams),
        ("POST", r"/v1/invoices/(\w+)/void", "_void", sp.InvoiceVoidInvoiceParams),
        ("GET", r"/v1/accounts/(\w+)", "_get_account", None),
        ("GET", r"/v1/(customers|subscriptions|invoices|invoiceitems|events)/(\w+)", "_get", None),
        ("GET", r"/v1/(checkout/sessions)/(\w+)", "_get", None),
    ]
]
_KINDS = {
    "customers": "customer",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "invoiceitems": "invoiceitem",
    "events": "event",
    "checkout/sessions": "checkout.session",
}
_LINE_ITEM_KEYS = _allowed(checkout.SessionCreateParamsLineItem)
_SUB_ITEM_KEYS = _allowed(sp.SubscriptionUpdateParamsItem)


# ---------------------------------------------------------------- the server


class StripeServer:
    def __init__(self, api_key: str = "sk_test_passerelle") -> None:
        self.api_key = api_key
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._clock = 0  # last event's created; survives reset() so it keeps increasing
        self._clear()

    def _clear(self) -> None:
        self._objects: dict[str, Obj] = {}
        self._owners: dict[str, str | None] = {}
        self._item_sub: dict[str, str] = {}  # subscription item id -> subscription id
        self._checkout: dict[str, Obj] = {}  # session id -> line items, subscription metadata
        self._accounts: dict[str, Obj] = {}
        self._saved: dict[tuple[str | None, str], tuple[Request, bytes]] = {}
        self._failures: deque[int] = deque()
        self._delays: deque[float] = deque()
        self._calls: list[StripeCall] = []

    # -- lifecycle

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("StripeServer is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StripeServer:
        handler = type("BoundHandler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def reset(self) -> None:
        """Forget objects, accounts, calls, idempotency keys, failures and delays."""
        with self._lock:
            self._clear()

    # -- failure injection and the request log

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * n)

    def delay_next(self, n: int = 1, seconds: float = 1.0) -> None:
        with self._lock:
            self._delays.extend([seconds] * n)

    @property
    def calls(self) -> list[StripeCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, path_prefix: str) -> list[StripeCall]:
        method = method.upper()
        return [c for c in self.calls if c.method == method and c.path.startswith(path_prefix)]

    # -- test-side state

    def add_account(self, account_id: str | None = None, **fields: Any) -> str:
        """Register a connected account (ready: charges and payouts enabled)."""
        account = copy.deepcopy(_fixtures()["account"])
        account_id = account_id or new_id("acct_", 16)
        account.update(id=account_id, created=_now(), email=None, details_submitted=True)
        account.update(charges_enabled=True, payouts_enabled=True)
        account["requirements"].update(currently_due=[], eventually_due=[], disabled_reason=None)
        account["external_accounts"]["url"] = f"/v1/accounts/{account_id}/external_accounts"
        account.update(copy.deepcopy(fields))
        with self._lock:
            self._accounts[account_id] = account
        return account_id

    def complete_checkout(
        self, session_id: str, *, status: str = "active"
    ) -> tuple[Obj, list[Obj]]:
        """Pay an open subscription-mode session: creates its subscription (and customer if
        none), completes the session, records checkout.session.completed then
        customer.subscription.created; returns (subscription, [those two events])."""
        with self._lock:
            session = self._stored("checkout.session", session_id)
            if session["mode"] != "subscription" or session["status"] != "open":
                raise ValueError(f"{session_id} is not an open subscription-mode session")
            account = self._owners[session_id]
            customer = session["customer"]
            if customer is None:
                customer = self._new_customer({"email": session["customer_email"]}, account)["id"]
            extra = self._checkout[session_id]
            sub = self._new_subscription(customer, extra["items"], extra["metadata"], account)
            sub["status"] = status
            if status == "trialing":
                sub.update(trial_start=sub["created"], trial_end=sub["created"] + 30 * DAY)
            paid = "no_payment_required" if status == "trialing" else "paid"
            session.update(status="complete", payment_status=paid, customer=customer)
            session["subscription"] = sub["id"]
            buyer = self._objects[customer]
            session["customer_details"] = {k: buyer[k] for k in ("email", "name", "phone")}
            session["customer_details"].update(address=None, tax_exempt="none", tax_ids=[])
            events = [
                self.make_event("checkout.session.completed", session, account=account),
                self.make_event("customer.subscription.created", sub, account=account),
            ]
            return copy.deepcopy(sub), events

    def set_subscription(self, sub_id: str, **fields: Any) -> Obj:
        """Change top-level fields; records customer.subscription.updated (with
        previous_attributes), or .deleted when status becomes "canceled"."""
        with self._lock:
            sub = self._stored("subscription", sub_id)
            before = copy.deepcopy(sub)
            if fields.get("status") == "canceled":
                fields = {"canceled_at": _now(), "ended_at": _now(), **fields}
            sub.update(copy.deepcopy(fields))
            account = self._owners[sub_id]
            if sub["status"] == "canceled" and before["status"] != "canceled":
                return self.make_event("customer.subscription.deleted", sub, account=account)
            previous = _changed(before, sub)
            return self.make_event(
                "customer.subscription.updated", sub, account=account, previous=previous
            )

    def make_event(
        self,
        type: str,
        obj: Mapping[str, Any] | stripe.StripeObject,
        *,
        account: str | None = None,
        previous: Obj | None = None,
        request: Request | None = None,
    ) -> Obj:
        """Record an Event whose data.object is a copy of ``obj`` (dict or SDK object) now;
        ``created`` strictly increases per server, across reset(). Retrievable by
        GET /v1/events/{id} (with ``account`` as Stripe-Account when given)."""
        with self._lock:
            self._clock = max(self._clock + 1, _now())
            event = self._new("event", "evt_", account, None, type=type, created=self._clock)
            event.update(api_version=stripe.api_version, pending_webhooks=1)
            snapshot = obj.to_dict() if isinstance(obj, stripe.StripeObject) else dict(obj)
            event["data"] = {"object": copy.deepcopy(snapshot)}
            if previous:
                event["data"]["previous_attributes"] = copy.deepcopy(previous)
            event["request"] = {
                "id": request.request_id if request else None,
                "idempotency_key": request.idempotency_key if request else None,
            }
            if account:
                event["account"] = account
            return copy.deepcopy(event)

    def get(self, obj_id: str) -> Obj:
        """Any stored object by id (customer, session, subscription, item, invoice, event...)."""
        with self._lock:
            if obj_id in self._item_sub:
                return copy.deepcopy(self._item(obj_id)[1])
            return copy.deepcopy(self._objects[obj_id])

    def subscription(self, sub_id: str) -> Obj:
        with self._lock:
            return copy.deepcopy(self._stored("subscription", sub_id))

    def invoices(self, account: str | None = None) -> list[Obj]:
        return self._all("invoice", account)

    def customers(self, account: str | None = None) -> list[Obj]:
        return self._all("customer", account)

    def events(self, type: str | None = None) -> list[Obj]:
        """Every recorded event (all accounts), oldest first, optionally of one type."""
        with self._lock:
            found = [o for o in self._objects.values() if o["object"] == "event"]
            return [copy.deepcopy(e) for e in found if type is None or e["type"] == type]

    def _all(self, kind: str, account: str | None) -> list[Obj]:
        with self._lock:
            objects = self._objects.items()
            return [
                copy.deepcopy(o)
                for i, o in objects
                if o["object"] == kind and self._owners[i] == account
            ]

    # -- storage

    def _new(
        self,
        kind: str,
        prefix: str,
        account: str | None,
        p: Mapping[str, Any] | None,
        **fields: Any,
    ) -> Obj:
        obj = copy.deepcopy(_fixtures()[kind])
        obj.update(dict.fromkeys(_NULLS.get(kind, "").split()))
        obj.update({k: (p or {}).get(k) for k in _COPIED.get(kind, "").split()})
        obj.update(id=new_id(prefix), created=_now(), livemode=False)
        if p is not None and "metadata" in obj:
            obj["metadata"] = _merge_metadata({}, p.get("metadata"))
        obj.update(fields)
        self._objects[obj["id"]] = obj
        self._owners[obj["id"]] = account
        return obj

    def _stored(self, kind: str, obj_id: str) -> Obj:
        obj = self._objects.get(obj_id)
        if obj is None or obj["object"] != kind:
            raise KeyError(f"no {kind} {obj_id!r}")
        return obj

    def _find(self, kind: str, obj_id: str, account: str | None, param: str = "") -> Obj:
        """The object visible to ``account``; 404, or 400 naming ``param`` when referenced."""
        obj = self._objects.get(obj_id)
        if obj is None or obj["object"] != kind or self._owners[obj_id] != account:
            raise _no_such(kind, obj_id, param or "id", 400 if param else 404)
        return obj

    def _item(self, item_id: str) -> tuple[Obj, Obj]:
        sub = self._objects[self._item_sub[item_id]]
        return sub, next(i for i in sub["items"]["data"] if i["id"] == item_id)

    # -- HTTP plumbing (called from handler threads)

    def _handle(
        self, method: str, target: str, headers: Message, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        if method == "GET" and split.path.startswith("/pay/"):
            page = f"<!doctype html><title>Stripe test page</title><p>{split.path}</p>"
            return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()
        with self._lock:
            delay = self._delays.popleft() if self._delays else 0.0
        time.sleep(delay)
        raw = body.decode("utf-8", "replace") if method == "POST" else split.query
        key = headers.get("Idempotency-Key") if method == "POST" else None
        account = headers.get("Stripe-Account") or None
        req = Request(method, split.path, parse_form(raw), account, key or None, new_id("req_", 14))
        status, payload, original = self._respond(req, headers.get("Authorization") or "")
        replayed = original is not None
        with self._lock:
            call = StripeCall(
                method, req.path, req.params, account, req.idempotency_key, status, replayed
            )
            self._calls.append(call)
        out = {"Content-Type": "application/json", "Request-Id": req.request_id}
        out["Stripe-Version"] = headers.get("Stripe-Version") or stripe.api_version
        if req.idempotency_key:
            out["Idempotency-Key"] = req.idempotency_key
        if original is not None:
            out.update({"Idempotent-Replayed": "true", "Original-Request": original})
        return status, out, payload

    def _respond(self, req: Request, authorization: str) -> tuple[int, bytes, str | None]:
        """(status, body, original request id when replayed)."""
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        try:
            if failure is not None:
                raise _injected(failure)
            self._authenticate(authorization)
            with self._lock:
                self._check_account(req.account)
                if (saved := self._replay(req)) is not None:
                    return 200, saved[1], saved[0].request_id
                body = _dump(self._dispatch(req))
                if req.idempotency_key:
                    self._saved[(req.account, req.idempotency_key)] = (req, body)
                return 200, body, None
        except StripeError as error:
            return error.status, _dump(error.body()), None

    def _authenticate(self, authorization: str) -> None:
        if not authorization.startswith("Bearer "):
            raise StripeError(401, "You did not provide an API key.")
        key = authorization.removeprefix("Bearer ")
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise StripeError(401, f"Invalid API Key provided: {key[:8]}****{key[-4:]}")

    def _check_account(self, account: str | None) -> None:
        if account is not None and account not in self._accounts:
            key = f"{self.api_key[:8]}****{self.api_key[-4:]}"
            message = (
                f"The provided key '{key}' does not have access to account '{account}' "
                "(or that account does not exist). Application access may have been revoked."
            )
            raise StripeError(403, message, "account_invalid")

    def _replay(self, req: Request) -> tuple[Request, bytes] | None:
        saved = self._saved.get((req.account, req.idempotency_key or ""))
        if saved is not None and not saved[0].same(req):
            message = (
                "Keys for idempotent requests can only be used with the same parameters they were"
                f" first used with. Try using a key other than '{req.idempotency_key}' if you"
                " meant to execute a different request."
            )
            raise StripeError(400, message, type="idempotency_error")
        return saved

    def _dispatch(self, req: Request) -> Obj:
        for method, pattern, name, allowed in _ROUTES:
            if method == req.method and (match := pattern.fullmatch(req.path)):
                _check_keys(req.params, allowed)
                result: Obj = getattr(self, name)(req, *match.groups())
                return result
        message = (
            f"Unrecognized request URL ({req.method}: {req.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/."
        )
        raise StripeError(404, message)

    # -- GET

    def _get(self, req: Request, plural: str, obj_id: str) -> Obj:
        return self._find(_KINDS[plural], obj_id, req.account)

    def _get_account(self, req: Request, obj_id: str) -> Obj:
        if obj_id not in self._accounts:
            raise _no_such("account", obj_id)
        return self._accounts[obj_id]

    def _get_item(self, req: Request, obj_id: str) -> Obj:
        if obj_id not in self._item_sub or self._owners[self._item_sub[obj_id]] != req.account:
            raise _no_such("subscription_item", obj_id)
        return self._item(obj_id)[1]

    # -- customers and sessions

    def _new_customer(self, p: Mapping[str, Any], account: str | None) -> Obj:
        locales = _as_list(p.get("preferred_locales"), "preferred_locales")
        customer = self._new("customer", "cus_", account, p, preferred_locales=locales)
        customer.update(invoice_prefix=secrets.token_hex(4).upper(), next_invoice_sequence=1)
        return customer

    def _create_customer(self, req: Request) -> Obj:
        return self._new_customer(req.params, req.account)

    def _create_checkout(self, req: Request) -> Obj:
        p = req.params
        _need(p, "mode")
        mode = _enum(p, "mode", ("payment", "setup", "subscription"))
        if p.get("customer"):
            self._find("customer", p["customer"], req.account, "customer")
        line_items = _as_list(p.get("line_items"), "line_items")
        items = [self._line_item(f"line_items[{i}]", li) for i, li in enumerate(line_items)]
        if mode == "subscription" and not items:
            _need(p, "line_items")
        session = self._new("checkout.session", "cs_test_a1", req.account, p)
        session_id = session["id"]
        session.update(status="open", payment_status="unpaid", expires_at=session["created"] + DAY)
        session["url"] = f"{self.url}/pay/checkout/{session_id}"
        sub_metadata = (p.get("subscription_data") or {}).get("metadata")
        self._checkout[session_id] = {"items": items, "metadata": _merge_metadata({}, sub_metadata)}
        return session

    def _line_item(self, prefix: str, entry: Any) -> Obj:
        _check_keys(entry, _LINE_ITEM_KEYS, prefix)
        quantity = _int(entry, "quantity", prefix)
        return {
            "price": _need(entry, "price", prefix),
            "quantity": 1 if quantity is None else quantity,
        }

    def _create_portal(self, req: Request) -> Obj:
        self._find("customer", _need(req.params, "customer"), req.account, "customer")
        session = self._new("billing_portal.session", "bps_", req.account, req.params)
        session["url"] = f"{self.url}/pay/portal/{session['id']}"
        return session

    # -- subscriptions

    def _new_subscription(
        self, customer: str, items: list[Obj], metadata: dict[str, str], account: str | None
    ) -> Obj:
        sub = self._new("subscription", "sub_", account, None, customer=customer, metadata=metadata)
        sub.update(status="active", cancel_at_period_end=False, billing_schedules=[])
        sub.update(start_date=sub["created"], billing_cycle_anchor=sub["created"])
        data = [self._new_item(sub["id"], li["price"], li["quantity"]) for li in items]
        sub["items"] = _list_of(data, f"/v1/subscription_items?subscription={sub['id']}")
        return sub

    def _new_item(self, sub_id: str, price: str, quantity: int) -> Obj:
        item = copy.deepcopy(_fixtures()["subscription_item"])
        now, item_id = _now(), new_id("si_", 14)
        item.update(id=item_id, created=now, subscription=sub_id, quantity=quantity, metadata={})
        item.update(current_period_start=now, current_period_end=now + 30 * DAY)
        item.update(dict.fromkeys(_NULLS["subscription_item"].split()))
        item["price"].update(id=price, livemode=False)
        item["plan"].update(id=price, livemode=False)
        self._item_sub[item_id] = sub_id
        return item

    def _change_item(self, item: Obj, p: Mapping[str, Any], prefix: str = "") -> None:
        quantity = _int(p, "quantity", prefix)
        if quantity is not None:
            item["quantity"] = quantity
        if p.get("price"):
            item["price"]["id"] = item["plan"]["id"] = p["price"]
        if "metadata" in p:
            item["metadata"] = _merge_metadata(item["metadata"], p["metadata"])

    def _apply_item_entry(self, sub: Obj, prefix: str, entry: Any) -> None:
        """One ``items[i]``: update or delete an existing item (by id), or add a new one."""
        _check_keys(entry, _SUB_ITEM_KEYS, prefix)
        data = sub["items"]["data"]
        if not entry.get("id"):
            quantity = _int(entry, "quantity", prefix)
            price = _need(entry, "price", prefix)
            data.append(self._new_item(sub["id"], price, 1 if quantity is None else quantity))
            return
        item = next((it for it in data if it["id"] == entry["id"]), None)
        if item is None:
            raise _no_such("subscription_item", entry["id"], f"{prefix}[id]", 400)
        if _bool(entry, "deleted"):
            data.remove(item)
            del self._item_sub[item["id"]]
        else:
            self._change_item(item, entry, prefix)

    def _update_subscription(self, req: Request, obj_id: str) -> Obj:
        sub, p = self._find("subscription", obj_id, req.account), req.params
        _enum(p, "proration_behavior", PRORATIONS)
        before = copy.deepcopy(sub)
        if "metadata" in p:
            sub["metadata"] = _merge_metadata(sub["metadata"], p["metadata"])
        if (cancel := _bool(p, "cancel_at_period_end")) is not None:
            sub["cancel_at_period_end"] = cancel
        if "description" in p:
            sub["description"] = p["description"] or None
        for i, entry in enumerate(_as_list(p.get("items"), "items")):
            self._apply_item_entry(sub, f"items[{i}]", entry)
        sub["items"]["total_count"] = len(sub["items"]["data"])
        self._record_update(sub, before, req)
        return sub

    def _cancel_subscription(self, req: Request, obj_id: str) -> Obj:
        """Cancel now (Stripe's DELETE): status canceled, and its customer.subscription.deleted
        event. One already canceled is answered as it is, with no new event."""
        sub = self._find("subscription", obj_id, req.account)
        if sub["status"] == "canceled":
            return sub
        now = _now()
        sub.update(status="canceled", canceled_at=now, ended_at=now)
        self.make_event("customer.subscription.deleted", sub, account=req.account, request=req)
        return sub

    def _update_item(self, req: Request, obj_id: str) -> Obj:
        self._get_item(req, obj_id)
        _enum(req.params, "proration_behavior", PRORATIONS)
        sub, item = self._item(obj_id)
        before = copy.deepcopy(sub)
        self._change_item(item, req.params)
        self._record_update(sub, before, req)
        return item

    def _record_update(self, sub: Obj, before: Obj, req: Request) -> None:
        if previous := _changed(before, sub):
            self.make_event(
                "customer.subscription.updated",
                sub,
                account=req.account,
                previous=previous,
                request=req,
            )

    # -- invoices

    def _create_invoiceitem(self, req: Request) -> Obj:
        p = req.params
        self._find("customer", _need(p, "customer"), req.account, "customer")
        _need(p, "amount")
        amount, currency = _int(p, "amount"), _need(p, "currency")
        invoice = None
        if p.get("invoice"):
            invoice = self._find("invoice", p["invoice"], req.account, "invoice")
            if invoice["status"] != "draft" or invoice["customer"] != p["customer"]:
                message = "Invoice items can only be added to draft invoices of that customer."
                raise _invalid(message, "invoice", "invoice_not_editable")
        item = self._new("invoiceitem", "ii_", req.account, p, amount=amount, net_amount=amount)
        item.update(currency=currency.lower(), invoice=invoice and invoice["id"], quantity=1)
        item.update(date=item["created"], quantity_decimal="1")
        item["period"] = {"start": item["created"], "end": item["created"]}
        if invoice:
            self._refresh_invoice(invoice)
        return item

    def _create_invoice(self, req: Request) -> Obj:
        p = req.params
        customer = self._find("customer", _need(p, "customer"), req.account, "customer")
        method = _enum(p, "collection_method", ("charge_automatically", "send_invoice"))
        days = _int(p, "days_until_due")
        if method == "send_invoice" and days is None and not p.get("due_date"):
            _need(p, "days_until_due")
        include = _enum(p, "pending_invoice_items_behavior", ("exclude", "include")) == "include"
        invoice = self._new("invoice", "in_", req.account, p, status="draft", amount_paid=0)
        currency = (p.get("currency") or customer["currency"] or "usd").lower()
        invoice.update(currency=currency, collection_method=method or "charge_automatically")
        invoice.update(customer_email=customer["email"], customer_name=customer["name"])
        invoice.update(auto_advance=bool(_bool(p, "auto_advance")), amount_overpaid=0)
        invoice.update(period_start=invoice["created"], period_end=invoice["created"])
        invoice["status_transitions"] = dict.fromkeys(invoice["status_transitions"])
        due = invoice["created"] + days * DAY if days is not None else _int(p, "due_date")
        invoice["due_date"] = due
        if include:
            for item in self._invoice_items(customer["id"], None, req.account):
                if item["currency"] == currency:
                    item["invoice"] = invoice["id"]
        return self._refresh_invoice(invoice)

    def _invoice_items(
        self, customer: str, invoice_id: str | None, account: str | None
    ) -> list[Obj]:
        return [
            o
            for i, o in self._objects.items()
            if (o["object"], o.get("customer"), o.get("invoice"))
            == ("invoiceitem", customer, invoice_id)
            and self._owners[i] == account
        ]

    def _refresh_invoice(self, invoice: Obj) -> Obj:
        account = self._owners[invoice["id"]]
        items = self._invoice_items(invoice["customer"], invoice["id"], account)
        lines = [self._line(item) for item in items]
        invoice["lines"] = _list_of(lines, f"/v1/invoices/{invoice['id']}/lines")
        total = sum(line["amount"] for line in lines)
        for key in (
            "subtotal",
            "subtotal_excluding_tax",
            "total",
            "total_excluding_tax",
            "amount_due",
        ):
            invoice[key] = total
        invoice["amount_remaining"] = total - invoice["amount_paid"]
        return invoice

    def _line(self, item: Obj) -> Obj:
        line: Obj = copy.deepcopy(_fixtures()["invoice"]["lines"]["data"][0])
        line.update({k: copy.deepcopy(item[k]) for k in ("amount", "currency", "description")})
        line.update({k: copy.deepcopy(item[k]) for k in ("invoice", "metadata", "period")})
        line.update(id="il_" + item["id"][3:], subtotal=item["amount"], quantity=1, livemode=False)
        line.update(discount_amounts=[], taxes=[], pretax_credit_amounts=[])
        details = {"invoice_item": item["id"], "proration": False, "subscription": None}
        details["proration_details"] = {"credited_items": None}
        line["parent"] = {"type": "invoice_item_details", "invoice_item_details": details}
        line["parent"]["subscription_item_details"] = None
        return line

    def _finalize(self, req: Request, obj_id: str) -> Obj:
        invoice = self._find("invoice", obj_id, req.account)
        if invoice["status"] != "draft":
            message = (
                "This invoice is already finalized, you can't re-finalize a non-draft invoice."
            )
            raise _invalid(message, "", "invoice_unexpected_state")
        customer = self._objects[invoice["customer"]]
        number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        now, page = _now(), f"{self.url}/pay/invoice/{obj_id}"
        invoice.update(status="open", number=number, effective_at=now)
        invoice.update(hosted_invoice_url=page, invoice_pdf=f"{page}/pdf")
        invoice["status_transitions"]["finalized_at"] = now
        if (auto_advance := _bool(req.params, "auto_advance")) is not None:
            invoice["auto_advance"] = auto_advance
        self.make_event("invoice.finalized", invoice, account=req.account, request=req)
        return invoice

    def _void(self, req: Request, obj_id: str) -> Obj:
        invoice = self._find("invoice", obj_id, req.account)
        if invoice["status"] != "open":
            message = f"You can only void open invoices. This invoice is {invoice['status']}."
            raise _invalid(message, "", "invoice_unexpected_state")
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = _now()
        self.make_event("invoice.voided", invoice, account=req.account, request=req)
        return invoice


class _Handler(BaseHTTPRequestHandler):
    fake: StripeServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.fake._handle(self.command, self.path, self.headers, body)
        try:
            self.send_response(status)
            for name, value in [*headers.items(), ("Content-Length", str(len(payload)))]:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    do_GET = do_POST = do_DELETE = _serve


# ---------------------------------------------------------------- webhooks


def sign(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` value: ``t=<ts>,v1=<hex hmac-sha256(secret, "<ts>.<payload>")>``."""
    ts = _now() if timestamp is None else int(timestamp)
    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    digest = hmac.new(secret.encode(), f"{ts}.{text}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def event_payload(event: Mapping[str, Any]) -> bytes:
    """The body Stripe would POST: the event as pretty-printed JSON."""
    return _dump(dict(event))


async def deliver(
    client: httpx.AsyncClient,
    event: Mapping[str, Any],
    *,
    secret: str,
    path: str = WEBHOOK_PATH,
    timestamp: int | None = None,
    signature: str | None = None,
) -> httpx.Response:
    """POST ``event`` as Stripe would; ``signature`` replaces the computed header verbatim."""
    payload = event_payload(event)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": signature
        if signature is not None
        else sign(payload, secret, timestamp),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return await client.post(path, content=payload, headers=headers)


async def deliver_twice(
    client: httpx.AsyncClient, event: Mapping[str, Any], **kw: Any
) -> list[httpx.Response]:
    return [await deliver(client, event, **kw), await deliver(client, event, **kw)]


async def deliver_in_order(
    client: httpx.AsyncClient, events: Iterable[Mapping[str, Any]], **kw: Any
) -> list[httpx.Response]:
    """Deliver one after the other in the given order (pass a reversed list for out-of-order)."""
    return [await deliver(client, event, **kw) for event in events]


async def deliver_late(
    client: httpx.AsyncClient, event: Mapping[str, Any], age_seconds: int, **kw: Any
) -> httpx.Response:
    """Deliver signed with a timestamp ``age_seconds`` in the past."""
    return await deliver(client, event, timestamp=_now() - age_seconds, **kw)
