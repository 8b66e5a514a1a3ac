"""The caller: who they are, in which agency, and which other agencies they can switch to."""

from datetime import timedelta

from fastapi import APIRouter

from api.deps import CurrentPrincipal, ResourcesDep, SessionDep
from infra.clock import utcnow
from tenants import service
from tenants.models import Role
from tenants.schemas import (
    BillingBanner,
    MembershipSummary,
    MeResponse,
    TenantRead,
    TenantSummary,
    UserRead,
)
from tenants.standing import banner

router = APIRouter(tags=["me"])


@router.get("/me", summary="The authenticated person and their current agency")
async def get_me(
    principal: CurrentPrincipal, session: SessionDep, resources: ResourcesDep
) -> MeResponse:
    user, tenant, memberships = await service.me(session, principal)
    grace = timedelta(days=resources.settings.billing_grace_days)
    notice = banner(tenant.status, tenant.past_due_since, utcnow(), grace)
    return MeResponse(
        billing_banner=BillingBanner.model_validate(notice) if notice else None,
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
