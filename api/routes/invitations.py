"""Inviting people into the agency, and accepting an invitation."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.deps import CurrentPrincipal, ResourcesDep, SessionDep
from api.problems import responses
from api.routes.auth import _tokens
from api.tenancy import enter_tenant
from tenants import service
from tenants.schemas import InvitationAccept, InvitationCreate, InvitationRead, TokenResponse

router = APIRouter(prefix="/invitations", tags=["invitations"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
    summary="Invite someone by e-mail (the link goes out by e-mail only)",
)
async def create_invitation(
    body: InvitationCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
) -> InvitationRead:
    invitation = await service.invite(session, principal, body, resources.settings)
    return InvitationRead.model_validate(invitation, from_attributes=True)


@router.post(
    "/{token}/accept",
    responses=responses(410),
    summary="Accept an invitation: creates the account if needed and logs in",
)
async def accept_invitation(
    token: Annotated[str, Path(max_length=2048)],
    body: InvitationAccept,
    session: SessionDep,
    resources: ResourcesDep,
) -> TokenResponse:
    link = service.read_invitation_link(resources.signer, token)
    await enter_tenant(session, link.tenant_id)
    tenant, membership = await service.accept_invitation(
        session, resources.passwords, link, body, resources.settings
    )
    issued = await service.start_session(
        session,
        resources.signer,
        resources.settings,
        tenant=tenant,
        membership=membership,
        user_agent=None,
    )
    return _tokens(issued)
