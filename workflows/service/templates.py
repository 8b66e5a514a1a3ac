"""Workflow templates: the agency's approval recipes, and which one an item follows."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.errors import refuse_unknown_references
from infra.pagination import Keyset, Page, SortKey
from tenants.models import Brand, Membership, MembershipStatus, Role
from tenants.policy import Resource, Verb
from tenants.principal import Principal
from tenants.service.common import (
    bump,
    check_version,
    load_readable,
    record_audit,
    require_scope,
)
from workflows import errors
from workflows.models import BrandWorkflow, WorkflowTemplate
from workflows.schemas import Step, TemplateCreate, TemplateRead, TemplateUpdate

# When an agency has set up nothing: its brand leads approve, reminded after two days.
BUILT_IN: dict[str, Any] = {
    "template_id": None,
    "name": "Lead review (built in)",
    "steps": [
        {
            "name": "Lead review",
            "kind": "internal",
            "rule": "any",
            "user_ids": [],
            "assignment_role": "lead",
            "emails": [],
            "due_hours": 48,
            "timeout": {"policy": "remind", "reminder_hours": [0, 24], "escalate_to": None},
        }
    ],
    "allow_self_approval": False,
    "client_agreed_auto_approve": False,
    "blocking_checks": [],
}


def snapshot(template: WorkflowTemplate) -> dict[str, Any]:
    return {
        "template_id": str(template.id),
        "name": template.name,
        "steps": list(template.steps),
        "allow_self_approval": template.allow_self_approval,
        "client_agreed_auto_approve": template.client_agreed_auto_approve,
        "blocking_checks": list(template.blocking_checks),
    }


def template_read(template: WorkflowTemplate, brand_ids: list[uuid.UUID]) -> TemplateRead:
    return TemplateRead(
        id=template.id,
        name=template.name,
        description=template.description,
        steps=list(template.steps),
        allow_self_approval=template.allow_self_approval,
        client_agreed_auto_approve=template.client_agreed_auto_approve,
        blocking_checks=list(template.blocking_checks),
        is_tenant_default=template.is_tenant_default,
        brand_ids=brand_ids,
        archived=template.archived_at is not None,
        version=template.version,
        created_at=template.created_at,
        updated_at=template.updated_at,
    )


async def usable_template(
    session: AsyncSession, tenant_id: uuid.UUID, template_id: uuid.UUID
) -> WorkflowTemplate:
    template = await session.get(WorkflowTemplate, (tenant_id, template_id))
    if template is None or template.archived_at is not None:
        raise errors.TemplateNotFound("No active workflow template with this id.")
    return template


async def workflow_for(
    session: AsyncSession, tenant_id: uuid.UUID, brand_id: uuid.UUID, chosen: uuid.UUID | None
) -> dict[str, Any]:
    """The item's own choice, else the brand's default, else the agency's, else built in."""
    if chosen is not None:
        return snapshot(await usable_template(session, tenant_id, chosen))
    brand_default = (
        await session.scalars(
            select(WorkflowTemplate)
            .join(
                BrandWorkflow,
                (col(BrandWorkflow.tenant_id) == col(WorkflowTemplate.tenant_id))
                & (col(BrandWorkflow.template_id) == col(WorkflowTemplate.id)),
            )
            .where(
                BrandWorkflow.tenant_id == tenant_id,
                BrandWorkflow.brand_id == brand_id,
                col(WorkflowTemplate.archived_at).is_(None),
            )
        )
    ).first()
    if brand_default is not None:
        return snapshot(brand_default)
    fallback = (
        await session.scalars(
            select(WorkflowTemplate).where(
                WorkflowTemplate.tenant_id == tenant_id,
                col(WorkflowTemplate.is_tenant_default).is_(True),
                col(WorkflowTemplate.archived_at).is_(None),
            )
        )
    ).first()
    return snapshot(fallback) if fallback is not None else dict(BUILT_IN)


async def _brands_of(
    session: AsyncSession, tenant_id: uuid.UUID, template_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    rows = (
        await session.execute(
            select(BrandWorkflow.template_id, BrandWorkflow.brand_id)
            .where(
                BrandWorkflow.tenant_id == tenant_id,
                col(BrandWorkflow.template_id).in_(template_ids),
            )
            .order_by(col(BrandWorkflow.brand_id))
        )
    ).all()
    out: dict[uuid.UUID, list[uuid.UUID]] = {t: [] for t in template_ids}
    for template_id, brand_id in rows:
        out[template_id].append(brand_id)
    return out


_STAFF = tuple(r for r in Role if r != Role.client)


async def _check_people(session: AsyncSession, principal: Principal, data: TemplateCreate) -> None:
    """Named approvers must be people of this agency in the right role; escalations go to staff."""
    for index, step in enumerate(data.steps):
        groups = [(set(step.user_ids), (Role.client,) if step.kind == "client" else _STAFF)]
        if step.timeout.escalate_to is not None:
            groups.append(({step.timeout.escalate_to}, _STAFF))
        for ids, roles in groups:
            if not ids:
                continue
            found = set(
                (
                    await session.scalars(
                        select(Membership.user_id).where(
                            Membership.tenant_id == principal.tenant_id,
                            col(Membership.user_id).in_(ids),
                            col(Membership.role).in_(roles),
                            Membership.status != MembershipStatus.disabled,
                        )
                    )
                ).all()
            )
            if missing := sorted(str(u) for u in ids - found):
                who = "client contacts" if roles == (Role.client,) else "staff"
                why = f"Step {index + 1}: these people are not {who} of this agency: " + ", ".join(
                    missing
                )
                raise errors.InvalidTemplate(
                    why,
                    step_index=index,
                    user_ids=missing,
                    errors=_people_pointers(index, step, set(missing), why),
                )


def _people_pointers(index: int, step: Step, missing: set[str], why: str) -> list[dict[str, str]]:
    base = f"/steps/{index}"
    pointers = [f"{base}/user_ids/{i}" for i, u in enumerate(step.user_ids) if str(u) in missing]
    if step.timeout.escalate_to is not None and str(step.timeout.escalate_to) in missing:
        pointers.append(f"{base}/timeout/escalate_to")
    return [{"pointer": p, "message": why, "code": "unknown-reference"} for p in pointers]


async def _set_brands(
    session: AsyncSession, principal: Principal, template_id: uuid.UUID, brand_ids: list[uuid.UUID]
) -> None:
    wanted = sorted(set(brand_ids))
    if wanted:
        found = set(
            (
                await session.scalars(
                    select(Brand.id).where(
                        Brand.tenant_id == principal.tenant_id, col(Brand.id).in_(wanted)
                    )
                )
            ).all()
        )
        refuse_unknown_references("/brand_ids", brand_ids, found, "brand")
    await session.execute(
        delete(BrandWorkflow).where(
            col(BrandWorkflow.tenant_id) == principal.tenant_id,
            (col(BrandWorkflow.template_id) == template_id)
            | col(BrandWorkflow.brand_id).in_(wanted),
        )
    )
    for brand_id in wanted:
        session.add(
            BrandWorkflow(tenant_id=principal.tenant_id, brand_id=brand_id, template_id=template_id)
        )


async def _take_tenant_default(
    session: AsyncSession, principal: Principal, template_id: uuid.UUID
) -> None:
    await session.execute(
        update(WorkflowTemplate)
        .where(
            col(WorkflowTemplate.tenant_id) == principal.tenant_id,
            col(WorkflowTemplate.is_tenant_default).is_(True),
            col(WorkflowTemplate.id) != template_id,
        )
        .values(is_tenant_default=False)
    )


def _steps(data: TemplateCreate) -> list[dict[str, Any]]:
    return [step.model_dump(mode="json") for step in data.steps]


async def create_template(
    session: AsyncSession, principal: Principal, data: TemplateCreate
) -> TemplateRead:
    require_scope(principal, Resource.workflow_template, Verb.create)
    await _check_people(session, principal, data)
    template = WorkflowTemplate(
        tenant_id=principal.tenant_id,
        name=data.name,
        description=data.description,
        steps=_steps(data),
        allow_self_approval=data.allow_self_approval,
        client_agreed_auto_approve=data.client_agreed_auto_approve,
        blocking_checks=list(dict.fromkeys(data.blocking_checks)),
        is_tenant_default=data.is_tenant_default,
        created_by=principal.user_id,
    )
    if data.is_tenant_default:
        await _take_tenant_default(session, principal, template.id)
    session.add(template)
    await session.flush()
    await _set_brands(session, principal, template.id, data.brand_ids)
    _audit(session, principal, template, "workflow_template.created", data)
    await _flush(session)
    return template_read(template, sorted(set(data.brand_ids)))


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:  # two requests making a default at the same moment
        raise errors.InvalidTemplate(
            "Another template became the agency's default at the same moment; try again."
        ) from exc


def _audit(
    session: AsyncSession,
    principal: Principal,
    template: WorkflowTemplate,
    action: str,
    data: TemplateCreate,
) -> None:
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action=action,
        subject_type="workflow_template",
        subject_id=template.id,
        changes=data.model_dump(mode="json"),
    )


def readable_templates(principal: Principal) -> Select[Any]:
    """The agency's templates: any staff member may read them (require_scope says who)."""
    return select(WorkflowTemplate).where(WorkflowTemplate.tenant_id == principal.tenant_id)


async def _load(
    session: AsyncSession, principal: Principal, template_id: uuid.UUID, *, lock: bool = False
) -> WorkflowTemplate:
    template: WorkflowTemplate = await load_readable(
        session,
        readable_templates(principal).where(col(WorkflowTemplate.id) == template_id),
        lock=lock,
        missing=errors.TemplateNotFound(),
    )
    return template


async def get_template(
    session: AsyncSession, principal: Principal, template_id: uuid.UUID
) -> TemplateRead:
    require_scope(principal, Resource.workflow_template, Verb.read)
    template = await _load(session, principal, template_id)
    brands = await _brands_of(session, principal.tenant_id, [template.id])
    return template_read(template, brands[template.id])


TEMPLATE_ORDER = Keyset(
    "templates",
    (
        SortKey(col(WorkflowTemplate.name), lambda t: t.name),
        SortKey(col(WorkflowTemplate.id), lambda t: t.id, uuid.UUID),
    ),
)


async def list_templates(
    session: AsyncSession,
    principal: Principal,
    *,
    include_archived: bool,
    limit: int,
    cursor: str | None,
) -> Page[TemplateRead]:
    """By name, with the brands each template is the default of."""
    require_scope(principal, Resource.workflow_template, Verb.read)
    query = readable_templates(principal)
    if not include_archived:
        query = query.where(col(WorkflowTemplate.archived_at).is_(None))
    query = TEMPLATE_ORDER.apply(query, cursor=cursor, limit=limit)
    templates, next_page = TEMPLATE_ORDER.page((await session.scalars(query)).all(), limit=limit)
    brands = await _brands_of(session, principal.tenant_id, [t.id for t in templates])
    return Page(items=[template_read(t, brands[t.id]) for t in templates], next_cursor=next_page)


async def update_template(
    session: AsyncSession,
    principal: Principal,
    template_id: uuid.UUID,
    data: TemplateUpdate,
    *,
    if_match: int | None,
) -> TemplateRead:
    """Replaces the template. Items already under review keep the copy they started with."""
    require_scope(principal, Resource.workflow_template, Verb.update)
    template = await _load(session, principal, template_id, lock=True)
    check_version(template.version, if_match)
    await _check_people(session, principal, data)
    if data.is_tenant_default and not data.archived:
        await _take_tenant_default(session, principal, template.id)
    template.name = data.name
    template.description = data.description
    template.steps = _steps(data)
    template.allow_self_approval = data.allow_self_approval
    template.client_agreed_auto_approve = data.client_agreed_auto_approve
    template.blocking_checks = list(dict.fromkeys(data.blocking_checks))
    template.is_tenant_default = data.is_tenant_default and not data.archived
    template.archived_at = (template.archived_at or utcnow()) if data.archived else None
    bump(template)
    await _set_brands(session, principal, template.id, [] if data.archived else data.brand_ids)
    _audit(session, principal, template, "workflow_template.updated", data)
    await _flush(session)
    brands = await _brands_of(session, principal.tenant_id, [template.id])
    return template_read(template, brands[template.id])
