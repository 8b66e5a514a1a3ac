"""Every page module's router, in one place; none of them is part of the OpenAPI document."""

from __future__ import annotations

from fastapi import APIRouter

from web.routes import approve, portal, portal_auth, portal_invite

router = APIRouter(include_in_schema=False)
for module in (approve, portal_auth, portal_invite, portal):
    router.include_router(module.router)
