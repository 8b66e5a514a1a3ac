"""The platforms' webhooks (Meta for Pages and Instagram, LinkedIn): the subscription check
(GET) and the deliveries (POST), verified on the raw body, stored once, processed by a job.
No principal: the signature is the authentication.

A delivery is the busiest write there is (a popular page's comments, all at once), so it
takes nothing from dependency injection, and most deliveries do not even reach the route: the
short way in (api/delivery_lane.py) hands them to `accept_delivery` straight from the request
context. The raw row goes in as one autocommitted statement on a pooled driver connection (no
session or transaction around a single insert), the answer is encoded once, and the worker is
woken at most twice a second per process (`inbox.jobs.drains_after`), not once per delivery."""

from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from api.deps import ResourcesDep, get_resources, require_json
from api.problems import responses
from billing.subscription.schemas import WebhookReceived
from inbox.jobs import DRAIN_JOB, drains_after
from inbox.service import webhooks
from infra.clock import utcnow
from infra.errors import ProblemError
from infra.logging import get_logger
from infra.queue import not_before
from infra.resources import Resources

log = get_logger(__name__)

router = APIRouter(prefix="/platform-webhooks", tags=["platform webhooks"])

PlatformName = Annotated[
    str,
    Path(
        pattern=r"^[a-z_]{1,40}$",
        description="facebook_page, instagram_business or linkedin_organization",
    ),
]


@router.get(
    "/{platform}",
    response_class=PlainTextResponse,
    responses={
        **responses(401, 404, 503),
        200: {
            "description": "Meta: the hub.challenge as text; LinkedIn: JSON",
            "content": {"text/plain": {}, "application/json": {}},
        },
    },
    summary="The platform's subscription check",
)
async def verify_platform_webhook(
    platform: PlatformName, request: Request, resources: ResourcesDep
) -> Any:
    answer = webhooks.challenge(resources.settings, platform, dict(request.query_params))
    if isinstance(answer, dict):
        return JSONResponse(answer)
    return PlainTextResponse(answer)


@router.post(
    "/{platform}",
    response_model=WebhookReceived,
    responses=responses(401, 404, 413, 503),
    summary="A platform's delivery: verified on the raw body, stored once, processed by a job",
)
async def receive_platform_webhook(platform: PlatformName, request: Request) -> Response:
    # Most deliveries never get here: `DeliveryLane` takes them first (see there). This route
    # answers the rest (a body that is not JSON, a NUL, an Idempotency-Key) and documents the
    # operation.
    await require_json(request)  # a call, not a dependency: see api/app.py
    _check_declared_size(request.headers)
    body = await request.body()
    answer = await accept_delivery(get_resources(request), platform, body, request.headers)
    return Response(answer, media_type="application/json")


def _check_declared_size(headers: Mapping[str, str]) -> None:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > webhooks.MAX_BODY:
        raise TooLarge(f"A delivery is at most {webhooks.MAX_BODY} bytes.")


async def accept_delivery(
    resources: Resources, platform: str, body: bytes, headers: Mapping[str, str]
) -> bytes:
    """Verify, store and acknowledge one delivery: the JSON answer, or a ProblemError."""
    if len(body) > webhooks.MAX_BODY:
        raise TooLarge(f"A delivery is at most {webhooks.MAX_BODY} bytes.")
    async with resources.db.autocommit() as connection:
        event_id, duplicate = await webhooks.receive(
            connection, resources.settings, platform, body, headers
        )
    if event_id is not None:
        for job_id, at in drains_after(utcnow()):
            try:
                await resources.queue.enqueue_job(
                    DRAIN_JOB, job_id, _job_id=job_id, _defer_until=not_before(at)
                )
            except Exception:  # stored already: the inbox sweep drains what no job asked for
                log.warning("inbox.drain_enqueue_failed", exc_info=True)
    return _DUPLICATE if duplicate else _RECEIVED


_RECEIVED = orjson.dumps({"received": True, "duplicate": False})
_DUPLICATE = orjson.dumps({"received": True, "duplicate": True})


class TooLarge(ProblemError):
    status = 413
    type_slug = "payload-too-large"
    title = "The body is too large"
