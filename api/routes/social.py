"""Social accounts: connecting them (OAuth2 + PKCE), their status, syncing on request, their
statistics and anomalies, and clients' monthly audience reports."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from api.deps import CurrentPrincipal, IfMatch, ResourcesDep, SessionDep, tagged
from api.pagination import DEFAULT_LIMIT, Cursor, Limit
from api.problems import responses
from api.tenancy import enter_tenant
from inbox.service import figures as community
from infra.pagination import Page
from publishing import figures
from social.connectors.types import Platform
from social.kit import kit_of
from social.report_pdf import render_report_pdf
from social.schemas import (
    AnomalyRead,
    ClientReport,
    ConnectStart,
    Granularity,
    SocialAccountRead,
    SocialAccountUpdate,
    StatsRead,
    SyncRequested,
)
from social.service import accounts, reports, stats
from tenants.schemas import Day, Month

router = APIRouter(tags=["social"])

FromDate = Annotated[
    Day | None,
    Query(alias="from", description="First day, 2000-01-01 to 2099-12-31 (default: 30 days ago)"),
]
ToDate = Annotated[
    Day | None,
    Query(alias="to", description="Last day, 2000-01-01 to 2099-12-31 (default: yesterday)"),
]
# RFC 6749 appendix A: code, state and error are visible ASCII (percent-encoded, 3 bytes each
# at most), which keeps a valid callback URL far below what the HTTP server reads (64 KiB).
_VSCHARS = r"^[\x20-\x7e]*$"


@router.post(
    "/brands/{brand_id}/social-accounts/connect",
    responses=responses(409, 503),
    summary="Start connecting a social account: answers the platform's authorization URL",
)
async def connect_social_account(
    brand_id: uuid.UUID,
    platform: Platform,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
) -> ConnectStart:
    return await accounts.start_connection(
        session, principal, kit_of(resources), resources.signer, brand_id, platform
    )


@router.get(
    "/oauth/callback/{platform}",
    responses={
        **responses(409, 502, 503),
        303: {"description": "A browser is sent back to the app's page of the brand's accounts"},
    },
    summary="Where the platform sends the person back: stores the connected account",
    openapi_extra={"security": []},
)
async def oauth_callback(
    platform: Platform,
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    code: Annotated[str | None, Query(max_length=4096, pattern=_VSCHARS)] = None,
    state: Annotated[str | None, Query(max_length=4096, pattern=_VSCHARS)] = None,
    error: Annotated[str | None, Query(max_length=512, pattern=_VSCHARS)] = None,
) -> SocialAccountRead:
    named = accounts.read_state(resources.signer, platform, state)
    await enter_tenant(session, named.tenant_id)
    account = await accounts.complete_connection(
        session,
        resources.db,
        kit_of(resources),
        platform,
        named,
        code=code,
        error=error,
        request_id=request.state.request_id,
    )
    if "text/html" in request.headers.get("accept", ""):
        target = (
            f"{resources.settings.app_base_url}/brands/{account.brand_id}/social-accounts"
            f"?connected={account.id}"
        )
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)  # type: ignore[return-value]
    return account


@router.get("/brands/{brand_id}/social-accounts", summary="A brand's social accounts")
async def list_social_accounts(
    brand_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[SocialAccountRead]:
    return await accounts.list_accounts(session, principal, brand_id, limit=limit, cursor=cursor)


@router.get("/social-accounts/{account_id}", summary="A social account and its sync state")
async def get_social_account(
    account_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> SocialAccountRead:
    return tagged(response, await accounts.get_account(session, principal, account_id))


@router.patch(
    "/social-accounts/{account_id}",
    responses=responses(409, 412),
    summary="Pause syncing (history kept) or resume it",
)
async def update_social_account(
    account_id: uuid.UUID,
    body: SocialAccountUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    response: Response,
    if_match: IfMatch,
) -> SocialAccountRead:
    return tagged(
        response,
        await accounts.set_status(session, principal, account_id, body.status, if_match=if_match),
    )


@router.delete(
    "/social-accounts/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Disconnect an account: its tokens and history are deleted",
)
async def delete_social_account(
    account_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    await accounts.disconnect(session, principal, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/social-accounts/{account_id}/sync",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(409, 429),
    summary="Sync this account now (a few times per account in 10 minutes)",
)
async def sync_social_account_now(
    account_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
) -> SyncRequested:
    return await accounts.request_sync(
        session, principal, kit_of(resources), resources.limiter, resources.queue, account_id
    )


@router.get(
    "/brands/{brand_id}/stats",
    summary="A brand's audience, added up over its accounts, by day, week or month",
)
async def get_brand_stats(
    brand_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    from_date: FromDate = None,
    to_date: ToDate = None,
    granularity: Granularity = "day",
) -> StatsRead:
    return await stats.brand_stats(
        session,
        principal,
        brand_id,
        from_date=from_date,
        to_date=to_date,
        granularity=granularity,
    )


@router.get(
    "/social-accounts/{account_id}/stats",
    summary="One account's audience by day, week or month",
)
async def get_account_stats(
    account_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    from_date: FromDate = None,
    to_date: ToDate = None,
    granularity: Granularity = "day",
) -> StatsRead:
    return await stats.account_stats(
        session,
        principal,
        account_id,
        from_date=from_date,
        to_date=to_date,
        granularity=granularity,
    )


@router.get(
    "/brands/{brand_id}/anomalies",
    summary="Follower drops and engagement spikes found in a brand's accounts",
)
async def get_brand_anomalies(
    brand_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    from_date: FromDate = None,
    to_date: ToDate = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[AnomalyRead]:
    return await stats.brand_anomalies(
        session,
        principal,
        brand_id,
        from_date=from_date,
        to_date=to_date,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/clients/{client_id}/reports/{month}",
    summary="A client's monthly audience report with each brand's top posts and how the "
    "community was answered (JSON; the PDF is at …/pdf)",
)
async def get_client_report(
    client_id: uuid.UUID, month: Month, principal: CurrentPrincipal, session: SessionDep
) -> ClientReport:
    report = await reports.client_report(session, principal, client_id, month)
    report = await figures.add_top_posts(session, principal, report)
    return await community.add_community(session, principal, report)


@router.get(
    "/clients/{client_id}/reports/{month}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The report as PDF"}},
    summary="A client's monthly audience report as a PDF with charts, in the client's language",
)
async def get_client_report_pdf(
    client_id: uuid.UUID, month: Month, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    report = await reports.client_report(session, principal, client_id, month)
    report = await figures.add_top_posts(session, principal, report)
    report = await community.add_community(session, principal, report)
    return Response(
        render_report_pdf(report, timezone=principal.timezone),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="report-{report.month}.pdf"'},
    )
