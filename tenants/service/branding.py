"""The agency's branding: its logo, the address of its own client-facing app, and what e-mails
and pages make of them (`agency_mark`, `client_link_base`).

Owners and admins change it; everyone in the agency reads it. The logo is served publicly by
its content hash (it is shown in e-mails, which carry no credentials), so its URL changes with
the image and can be cached forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from io import BytesIO
from typing import NoReturn
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError
from pydantic import HttpUrl, TypeAdapter, ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from infra.clock import utcnow
from infra.errors import InvalidFields, NotFound
from infra.settings import Settings
from infra.ssrf import is_loopback
from tenants import errors
from tenants.models import AgencyBranding, Role, Tenant
from tenants.principal import Principal
from tenants.schemas import BrandingRead, BrandingUpdate
from tenants.service.common import check_version, record_audit

LOGO_MAX_BYTES = 256 * 1024
LOGO_MAX_PIXELS_PER_SIDE = 2048
# What Pillow recognizes by the file's own first bytes -> the media type it must be sent as.
LOGO_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
LOGO_PATH = "/agency-logos"
# http:// app addresses are accepted only on the machine itself, and only outside production.
_LOCAL_ENVIRONMENTS = frozenset({"development", "test"})
_URL = TypeAdapter(HttpUrl)


@dataclass(frozen=True)
class AgencyMark:
    """How the agency appears to its clients: on pages, in e-mails."""

    name: str
    logo_url: str | None


# ---------------------------------------------------------------------------------------------
# Reading: for pages, e-mails and the API


async def _row(session: AsyncSession, tenant_id: uuid.UUID) -> AgencyBranding | None:
    return (
        await session.scalars(select(AgencyBranding).where(AgencyBranding.tenant_id == tenant_id))
    ).first()


def logo_url(settings: Settings, branding: AgencyBranding | None) -> str | None:
    """Absolute, on this service's public address: it goes into e-mails."""
    if branding is None or branding.logo_sha256 is None:
        return None
    base = settings.public_base_url.rstrip("/")
    return f"{base}{LOGO_PATH}/{branding.tenant_id}/{branding.logo_sha256}"


async def client_link_base(session: AsyncSession, settings: Settings, tenant_id: uuid.UUID) -> str:
    """The base of every link sent to a client contact or an external approver: the agency's
    own app when it set one, else this service's pages (PUBLIC_BASE_URL). Links for the
    agency's staff keep APP_BASE_URL, the staff app."""
    own = await session.scalar(
        select(AgencyBranding.app_base_url).where(AgencyBranding.tenant_id == tenant_id)
    )
    return (own or settings.public_base_url).rstrip("/")


async def logo_url_of(
    session: AsyncSession, settings: Settings, tenant_id: uuid.UUID
) -> str | None:
    """The agency's logo address, or None; reads only the hash, never the image."""
    digest = await session.scalar(
        select(AgencyBranding.logo_sha256).where(AgencyBranding.tenant_id == tenant_id)
    )
    if digest is None:
        return None
    return f"{settings.public_base_url.rstrip('/')}{LOGO_PATH}/{tenant_id}/{digest}"


async def agency_mark(
    session: AsyncSession, settings: Settings, tenant_id: uuid.UUID
) -> AgencyMark:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such agency.")
    return AgencyMark(name=tenant.name, logo_url=await logo_url_of(session, settings, tenant_id))


def read(settings: Settings, branding: AgencyBranding | None) -> BrandingRead:
    if branding is not None and branding.version == 0:
        branding = None  # made by a change that then changed nothing: as if absent
    return BrandingRead(
        logo_url=logo_url(settings, branding),
        logo_content_type=branding.logo_content_type if branding else None,
        logo_size=branding.logo_size if branding else None,
        app_base_url=branding.app_base_url if branding else None,
        # No row yet: version 0, so that If-Match: "0" guards the first change too.
        version=branding.version if branding else 0,
        updated_at=branding.updated_at if branding else None,
    )


async def get_branding(
    session: AsyncSession, principal: Principal, settings: Settings
) -> BrandingRead:
    return read(settings, await _row(session, principal.tenant_id))


async def public_logo(
    session: AsyncSession, tenant_id: uuid.UUID, sha256: str
) -> tuple[bytes, str] | None:
    """The logo whose hash is `sha256`, in the tenant the caller entered; None when the agency
    has no such logo (never had, or replaced it since)."""
    found = (
        await session.execute(
            select(AgencyBranding.logo, AgencyBranding.logo_content_type).where(
                AgencyBranding.tenant_id == tenant_id, AgencyBranding.logo_sha256 == sha256
            )
        )
    ).first()
    if found is None or found[0] is None or found[1] is None:
        return None
    return bytes(found[0]), str(found[1])


# ---------------------------------------------------------------------------------------------
# Changing: owners and admins


def _require_admin(principal: Principal) -> None:
    if principal.kind != "user" or principal.role not in (Role.owner, Role.admin):
        raise errors.PermissionDenied("Only the agency's owners and admins change its branding.")


async def _locked_row(session: AsyncSession, principal: Principal) -> AgencyBranding:
    """The agency's row, locked for this change. Made first if missing (version 0, as if
    absent): two first changes at once then wait for each other instead of both inserting."""
    await session.execute(
        pg_insert(AgencyBranding)
        .values(tenant_id=principal.tenant_id, version=0)
        .on_conflict_do_nothing(index_elements=["tenant_id"])
    )
    return (
        await session.scalars(
            select(AgencyBranding)
            .where(AgencyBranding.tenant_id == principal.tenant_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()


async def _changed(
    session: AsyncSession,
    principal: Principal,
    branding: AgencyBranding,
    action: str,
    changes: dict[str, object],
) -> AgencyBranding:
    """Apply `changes` to the row: next version, and the audit row."""
    for name, value in changes.items():
        setattr(branding, name, value)
    branding.version += 1
    branding.updated_at = utcnow()
    shown = {k: v for k, v in changes.items() if k != "logo"}  # the audit names, not the bytes
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action=action,
        subject_type="agency_branding",
        subject_id=principal.tenant_id,
        changes=shown,
    )
    await session.flush()
    return branding


async def update_branding(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    body: BrandingUpdate,
    *,
    if_match: int | None,
) -> BrandingRead:
    _require_admin(principal)
    changes: dict[str, object] = {}
    if "app_base_url" in body.model_fields_set:
        url = body.app_base_url
        changes["app_base_url"] = None if url is None else app_address(url, settings.environment)
    branding = await _locked_row(session, principal)
    check_version(branding.version, if_match)
    current = {k: getattr(branding, k) for k in changes}
    if changes != current:
        branding = await _changed(session, principal, branding, "branding.updated", changes)
    return read(settings, branding)


async def put_logo(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    data: bytes,
    declared_type: str,
    *,
    if_match: int | None,
) -> BrandingRead:
    _require_admin(principal)
    content_type = await asyncio.to_thread(checked_logo, data, declared_type)
    branding = await _locked_row(session, principal)
    check_version(branding.version, if_match)
    changes: dict[str, object] = {
        "logo": data,
        "logo_content_type": content_type,
        "logo_sha256": hashlib.sha256(data).hexdigest(),
        "logo_size": len(data),
    }
    if branding.logo_sha256 != changes["logo_sha256"]:
        branding = await _changed(session, principal, branding, "branding.logo_set", changes)
    return read(settings, branding)


async def delete_logo(
    session: AsyncSession, principal: Principal, settings: Settings, *, if_match: int | None
) -> BrandingRead:
    _require_admin(principal)
    branding = await _locked_row(session, principal)
    check_version(branding.version, if_match)
    if branding.logo is not None:
        cleared = dict.fromkeys(("logo", "logo_content_type", "logo_sha256", "logo_size"))
        branding = await _changed(session, principal, branding, "branding.logo_removed", cleared)
    return read(settings, branding)


# ---------------------------------------------------------------------------------------------
# The rules of a logo and of an app address


def checked_logo(data: bytes, declared_type: str) -> str:
    """The logo's media type, once the body proved to be a whole PNG, JPEG or WebP image of
    the type it was declared as. Pillow reads the file's own first bytes, never the name or
    header; SVG is refused outright: it is a document that can carry scripts."""
    media = declared_type.split(";")[0].strip().lower()
    if media not in LOGO_TYPES.values():
        hint = " SVG can carry scripts, so it is not accepted;" if "svg" in media else ""
        raise errors.LogoTypeUnsupported(
            f"Send the logo with Content-Type image/png, image/jpeg or image/webp;{hint} "
            f"got {media or 'none'}."
        )
    if len(data) > LOGO_MAX_BYTES:
        raise errors.LogoTooLarge(f"A logo is at most {LOGO_MAX_BYTES} bytes (256 KiB).")
    if not data:
        raise errors.LogoInvalid("The body is empty: send the image's bytes.")
    found = _image_format(data)
    if found is None:
        raise errors.LogoInvalid(f"The body is not a readable {_noun(media)} image.")
    if found != media:
        raise errors.LogoInvalid(
            f"The body is a {_noun(found)} image but was sent as {media}: send it as {found}."
        )
    return found


def _noun(media: str) -> str:
    return {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}.get(media, media)


def _image_format(data: bytes) -> str | None:
    """The media type of a whole, decodable image of an accepted kind and size; else None."""
    try:
        with Image.open(BytesIO(data), formats=list(LOGO_TYPES)) as image:
            width, height = image.size
            if max(width, height) > LOGO_MAX_PIXELS_PER_SIDE:
                raise errors.LogoInvalid(
                    f"The logo is {width}×{height} pixels; at most "
                    f"{LOGO_MAX_PIXELS_PER_SIDE} on each side."
                )
            found = LOGO_TYPES.get(image.format or "")
            image.load()  # decodes every pixel: a file cut short or damaged fails here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    return found


def app_address(url: str, environment: str) -> str:
    """The agency's app address as links will use it (no trailing slash), or a 422 naming
    the field: https, or http on the machine itself in development; no credentials, query
    or fragment, since links are made by appending a path."""
    text = url.strip()
    try:
        parsed = _URL.validate_python(text)
        explicit_port = urlsplit(text).port
    except (ValidationError, ValueError):
        _bad_address("is not an http(s) URL", "url_invalid")
    if parsed.username or parsed.password:
        _bad_address("must not contain a user name or password", "url_credentials")
    if parsed.query is not None or parsed.fragment is not None or text.endswith(("?", "#")):
        _bad_address("must not have a query (?…) or fragment (#…)", "url_query")
    host = parsed.host or ""
    local = is_loopback(host.strip("[]")) and environment in _LOCAL_ENVIRONMENTS
    if parsed.scheme == "http" and not local:
        _bad_address(
            "must be https (http only for 127.0.0.1, ::1 or localhost in development)",
            "url_not_https",
        )
    # The scheme's own port written out is the same address without it.
    default_port = 443 if parsed.scheme == "https" else 80
    port = f":{explicit_port}" if explicit_port not in (None, default_port) else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path or ''}".rstrip("/")


def _bad_address(message: str, code: str) -> NoReturn:
    raise InvalidFields.one("/app_base_url", f"The app address {message}.", code)
