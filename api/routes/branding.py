"""The agency's branding: its logo (a raw image body) and its own client-facing app address,
and the public address of the logo, which e-mails show."""

import re
import uuid

from fastapi import APIRouter, Request, Response

from api.deps import CurrentPrincipal, IfMatch, ResourcesDep, SessionDep, tagged
from api.problems import responses
from api.tenancy import enter_tenant
from infra.errors import NotFound
from tenants.errors import LogoTooLarge
from tenants.schemas import BrandingRead, BrandingUpdate
from tenants.service import branding

router = APIRouter(prefix="/agency", tags=["agency"])


@router.get("/branding", summary="The agency's logo and client-facing app address")
async def get_branding(
    principal: CurrentPrincipal, session: SessionDep, resources: ResourcesDep, response: Response
) -> BrandingRead:
    found = await branding.get_branding(session, principal, resources.settings)
    return tagged(response, found)


@router.patch(
    "/branding",
    responses=responses(412),
    summary="Set or clear the agency's own client-facing app address (owners and admins)",
)
async def update_branding(
    body: BrandingUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch,
    response: Response,
) -> BrandingRead:
    changed = await branding.update_branding(
        session, principal, resources.settings, body, if_match=if_match
    )
    return tagged(response, changed)


@router.delete(
    "/logo", responses=responses(412), summary="Remove the agency's logo (owners and admins)"
)
async def delete_logo(
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch,
    response: Response,
) -> BrandingRead:
    changed = await branding.delete_logo(session, principal, resources.settings, if_match=if_match)
    return tagged(response, changed)


# ---------------------------------------------------------------------------------------------
# The upload: an image body, so outside the JSON-only /v1 router.

logo_router = APIRouter(prefix="/agency", tags=["agency"])

_IMAGE = {"schema": {"type": "string", "format": "binary"}}
_LOGO_BODY = {
    "requestBody": {
        "required": True,
        "description": f"The image itself, at most {branding.LOGO_MAX_BYTES} bytes and "
        f"{branding.LOGO_MAX_PIXELS_PER_SIDE} pixels a side; SVG is refused (it can carry "
        "scripts)",
        "content": {media: _IMAGE for media in branding.LOGO_TYPES.values()},
    }
}


@logo_router.put(
    "/logo",
    openapi_extra=_LOGO_BODY,
    responses=responses(412, 413, 415, 422),
    summary="Set or replace the agency's logo: a PNG, JPEG or WebP body (owners and admins)",
)
async def put_logo(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch,
    response: Response,
) -> BrandingRead:
    data = await _read_limited(request, branding.LOGO_MAX_BYTES)
    changed = await branding.put_logo(
        session,
        principal,
        resources.settings,
        data,
        request.headers.get("content-type", ""),
        if_match=if_match,
    )
    return tagged(response, changed)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit`: a stream with no Content-Length is
    not read to its end first."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise LogoTooLarge(f"A logo is at most {limit} bytes (256 KiB).")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise LogoTooLarge(f"A logo is at most {limit} bytes (256 KiB).")
        chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------------------------------------
# The public logo: shown in e-mails, which carry no credentials.

public_router = APIRouter(tags=["agency"])

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# The address changes with the image, so a copy never goes stale.
_FOREVER = "public, max-age=31536000, immutable"


@public_router.get(
    branding.LOGO_PATH + "/{tenant_id}/{sha256}",
    response_class=Response,
    responses={
        200: {
            "description": "The logo image",
            "content": {media: _IMAGE for media in branding.LOGO_TYPES.values()},
        },
        **responses(404, 422),
    },
    summary="An agency's logo, by its content hash (public: e-mails show it)",
    openapi_extra={"security": []},
)
async def get_agency_logo(tenant_id: str, sha256: str, session: SessionDep) -> Response:
    # Parsed by hand: a malformed address is simply a logo that does not exist.
    try:
        tenant = uuid.UUID(tenant_id)
    except ValueError:
        raise _no_logo() from None
    if not _SHA256.match(sha256):
        raise _no_logo()
    # No signature names the tenant here; the content hash does the work of one: only a logo
    # whose bytes hash to it is ever read, and the hash is known only to those who were sent it.
    await enter_tenant(session, tenant)
    found = await branding.public_logo(session, tenant, sha256)
    if found is None:
        raise _no_logo()
    data, media_type = found
    return Response(
        content=data,
        media_type=media_type,
        headers={
            "Cache-Control": _FOREVER,
            "ETag": f'"{sha256}"',
            "X-Content-Type-Options": "nosniff",
            # An image, never a document: nothing in it may run if opened directly.
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


def _no_logo() -> NotFound:
    return NotFound("No such logo: the agency may have replaced it.")
