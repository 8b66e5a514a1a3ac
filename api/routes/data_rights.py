"""A person's erasure and the end of the agency's contract (Law 25, GDPR)."""

from fastapi import APIRouter, Response, status

from api.deps import CurrentPrincipal, ResourcesDep, SessionDep
from api.problems import responses
from infra.errors import NotFound
from privacy import closure, erasure
from privacy.schemas import ClosureCreate, ClosureRead, ErasureCreate, ErasureRead

router = APIRouter(tags=["data rights"])


@router.post(
    "/erasures",
    status_code=status.HTTP_201_CREATED,
    responses={
        **responses(404, 422),
        200: {"description": "This person was already erased: erased again"},
    },
    summary="Erase a client contact, an external approver or an inbox author (owners, admins)",
)
async def create_erasure(
    body: ErasureCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    response: Response,
) -> ErasureRead:
    record, created = await erasure.erase(session, principal, resources.settings, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return ErasureRead.model_validate(record, from_attributes=True)


@router.post(
    "/agency/closure",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(422),
    summary="Close the agency: archive invoices, revoke, cancel, delete everything (owner)",
)
async def create_closure(
    body: ClosureCreate, principal: CurrentPrincipal, session: SessionDep
) -> ClosureRead:
    record, _ = await closure.request_closure(session, principal, body.confirm)
    return ClosureRead.model_validate(record, from_attributes=True)


@router.get(
    "/agency/closure",
    responses=responses(404),
    summary="Where the agency's closure stands (owners, admins)",
)
async def get_closure(principal: CurrentPrincipal, session: SessionDep) -> ClosureRead:
    record = await closure.get_closure(session, principal)
    if record is None:
        raise NotFound("This agency has not asked to close.")
    return ClosureRead.model_validate(record, from_attributes=True)
