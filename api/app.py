"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

import web
from api import docs, openapi_links, problems
from api.admission import AdmissionMiddleware
from api.delivery_lane import DeliveryLane
from api.deprecations import (
    DEPRECATIONS,
    Deprecation,
    announce_deprecation,
    mark_deprecated_in_openapi,
)
from api.deps import require_json
from api.middleware import (
    BodyLimitMiddleware,
    IdempotencyMiddleware,
    NulCharacterMiddleware,
    RequestContextMiddleware,
)
from api.routes import (
    assignments,
    auth,
    billing,
    branding,
    brands,
    budgets,
    clients,
    content,
    data_rights,
    exports,
    inbox,
    inbox_crises,
    inbox_settings,
    invitations,
    invoices,
    me,
    members,
    partner_apps,
    platform_webhooks,
    portal,
    publishing,
    retainers,
    social,
    system,
    time,
    webhooks,
    workflow_templates,
)
from api.routing import flatten_routes
from infra import tracing
from infra.logging import configure_logging
from infra.memory import settle_heap
from infra.resources import Resources
from infra.settings import Settings, load_settings_or_exit

COMMON_PROBLEMS = (400, 401, 402, 403, 404, 413, 415, 422, 429, 500)


def _operation_id(route: APIRoute) -> str:
    # Stable, readable ids for generated clients: the endpoint function's name.
    return route.name


def create_app(
    settings: Settings | None = None,
    *,
    deprecations: Mapping[str, Deprecation] = DEPRECATIONS,
    flat: bool = True,
) -> FastAPI:
    """`flat=False` keeps FastAPI's tree of included routers (api/routing.py says why not)."""
    settings = settings or load_settings_or_exit()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = await Resources.open(settings)
        app.state.resources = resources
        settle_heap()
        try:
            yield
        finally:
            await resources.close()

    app = FastAPI(
        title="Passerelle API",
        version="1.0.0",
        description=(
            "One API for agency staff (single-page app), client contacts (approval portal) "
            "and partners. Errors are RFC 9457 problem documents; lists use cursor pagination."
        ),
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        docs_url=None,
        redoc_url=None,
    )
    docs.install(app)
    problems.install(app)
    app.state.deprecations = deprecations
    mark_deprecated_in_openapi(app, deprecations)
    openapi_links.install(app)

    v1 = APIRouter(
        prefix="/v1",
        dependencies=[Depends(require_json), Depends(announce_deprecation)],
        responses=problems.responses(*COMMON_PROBLEMS),
    )
    for module in (
        auth,
        me,
        branding,
        members,
        invitations,
        clients,
        brands,
        assignments,
        retainers,
        time,
        budgets,
        workflow_templates,
        content,
        publishing,
        # Before the inbox: its "/inbox/{item_id}" would take "crises" for an item id.
        inbox_crises,
        inbox,
        portal,
        billing,
        invoices,
        social,
        inbox_settings,
        partner_apps,
        webhooks,
        exports,
        data_rights,
    ):
        v1.include_router(module.router)
    # First, and outside /v1's dependencies: the platforms' deliveries come in bursts (a viral
    # post's comments) and routing tries routes in order; the receiver checks the media type
    # itself, and the platforms' side of the contract is not ours to deprecate.
    app.include_router(
        platform_webhooks.router, prefix="/v1", responses=problems.responses(*COMMON_PROBLEMS)
    )
    app.include_router(v1)
    app.include_router(
        partner_apps.oauth_router, prefix="/v1", responses=problems.responses(*COMMON_PROBLEMS)
    )
    # The logo upload's body is an image: outside the JSON-only /v1 router, same problems.
    app.include_router(
        branding.logo_router,
        prefix="/v1",
        dependencies=[Depends(announce_deprecation)],
        responses=problems.responses(*COMMON_PROBLEMS),
    )
    app.include_router(branding.public_router)
    app.include_router(system.router)
    web.install(app)
    if settings.environment == "development":
        web.install_development_pages(app)
    if flat:
        flatten_routes(app)

    # Innermost first: the request id must exist before anything can fail.
    app.add_middleware(NulCharacterMiddleware)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[
                "ETag",
                "X-Request-ID",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "RateLimit-Policy",
                "Deprecation",
                "Sunset",
                "Link",
            ],
        )
    app.add_middleware(
        AdmissionMiddleware, places=settings.api_concurrency or settings.database_pool_size
    )
    # Just inside the request context: a platform's delivery skips the layers above it.
    app.add_middleware(DeliveryLane)
    app.add_middleware(RequestContextMiddleware)
    tracing.instrument_app(app)
    return app


def app_from_env() -> FastAPI:
    """Entry point for uvicorn --factory."""
    settings = load_settings_or_exit()
    configure_logging(settings.log_level, json=settings.log_json)
    tracing.configure_tracing(settings)
    return create_app(settings)
