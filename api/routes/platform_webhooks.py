"""The platforms' webhooks (Meta for Pages and Instagram, LinkedIn): the subscription check
(GET) and the deliveries (POST), verified on the raw body, stored once, processed by a job.
No principal: the signature is the authentication."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from api.deps import ResourcesDep, SessionDep
from api.problems import responses
from billing.subscription.schemas import WebhookReceived
from inbox.jobs import DRAIN_JOB, drains_after
from inbox.service import webhooks
from infra.clock import utcnow
from infra.errors import ProblemError
from infra.queue import enqueue_after_commit

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
    responses=responses(401, 404, 413, 503),
    summary="A platform's delivery: verified on the raw body, stored once, processed by a job",
)
async def receive_platform_webhook(
    platform: PlatformName, request: Request, session: SessionDep, resources: ResourcesDep
) -> WebhookReceived:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > webhooks.MAX_BODY:
        raise TooLarge(f"A delivery is at most {webhooks.MAX_BODY} bytes.")
    body = await request.body()
    if len(body) > webhooks.MAX_BODY:
        raise TooLarge(f"A delivery is at most {webhooks.MAX_BODY} bytes.")
    event_id, duplicate = await webhooks.receive(
        session, resources.settings, platform, body, request.headers
    )
    if event_id is not None:
        for job_id, at in drains_after(utcnow()):
            enqueue_after_commit(session, DRAIN_JOB, job_id, job_id=job_id, defer_until=at)
    return WebhookReceived(received=True, duplicate=duplicate)


class TooLarge(ProblemError):
    status = 413
    type_slug = "payload-too-large"
    title = "The body is too large"
