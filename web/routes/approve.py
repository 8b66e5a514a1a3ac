"""External approvers: the signed link from the e-mail opens the post and its decision form."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from web.deps import ResourcesDep
from web.errors import PageError
from workflows import errors as workflow_errors
from workflows import service

router = APIRouter()


@router.get("/approve/{token}", response_class=HTMLResponse)
async def approval_page(token: str, request: Request, resources: ResourcesDep) -> HTMLResponse:
    try:
        service.read_link(resources.signer, token)
    except workflow_errors.LinkInvalid as exc:
        raise PageError(404, "error.link_invalid") from exc
    raise PageError(404, "error.not_found")
