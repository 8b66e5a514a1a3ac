"""The caller: who they are, in which agency, and which other agencies they can switch to."""

from fastapi import APIRouter

from api.deps import CurrentPrincipal, SessionDep
from tenants import service
from tenants.models import Role
from tenants.schemas import MembershipSummary, MeResponse, TenantRead, TenantSummary, UserRead

router = APIRouter(tags=["me"])


@router.get("/me", summary="The authenticated person and their current agency")
async def get_me(principal: CurrentPrincipal, session: SessionDep) -> MeResponse:
    user, tenant, memberships = await service.me(session, principal)
    return MeResponse(
        user=UserRead.model_validate(user, from_attributes=True),
        tenant=TenantRead.model_validate(tenant, from_attributes=True),
        role=principal.role,
        client_id=principal.client_id,
        memberships=[
            MembershipSummary(
                tenant=TenantSummary(id=t.id, slug=t.slug, name=t.name), role=Role(m.role)
            )
            for m, t in memberships
        ],
    )
