"""Publications from the request side: made when an item is scheduled, canceled when it is
unscheduled, listed, retried, and published at once on demand.

Services never commit: the request owns the transaction, and the publish jobs are enqueued
only once it has committed (infra.queue.enqueue_after_commit).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.errors import ProblemError
from infra.pagination import Keyset, Page, SortKey, id_key
from infra.queue import enqueue_after_commit
from infra.settings import Settings
from publishing import errors
from publishing.checks import Checker, Target
from publishing.machine import PubEvent, PubStatus, can, step
from publishing.models import Publication, PublicationAttempt
from publishing.rules import text_for
from publishing.schemas import (
    AttemptRead,
    PostFiguresRead,
    PostRead,
    PublicationRead,
    PublicationSummary,
)
from social.models import SocialAccount
from social.service.accounts import load_account
from tenants.policy import Verb
from tenants.principal import Principal
from tenants.service.common import bump, load_readable, record_audit
from workflows.engine import Status
from workflows.models import ContentItem, ContentRevision
from workflows.service.access import audit, item_visibility, load_item

ENQUEUE_AHEAD = timedelta(minutes=2)
"""A publication due this soon gets its job now (deferred to its time); later ones get it
from the sweeper, which looks this far ahead every minute."""


def publish_job_id(publication: Publication) -> str:
    """Unique per publication, planned time and attempt: a duplicate enqueue does nothing, a
    new time or a retry gets its own job."""
    planned = int(publication.planned_at.timestamp())
    return f"publish:{publication.id}:{planned}:{publication.attempts}"


def enqueue_publish(session: AsyncSession, publication: Publication, at: datetime) -> None:
    enqueue_after_commit(
        session,
        "publish_publication",
        str(publication.tenant_id),
        str(publication.id),
        job_id=publish_job_id(publication),
        defer_until=at,
    )


# --- who reads what --------------------------------------------------------------------------


def readable_publications(principal: Principal, verb: Verb = Verb.read) -> Select[Any]:
    """Publications of the content items this principal may `verb`."""
    return (
        select(Publication)
        .join(
            ContentItem,
            (col(ContentItem.tenant_id) == col(Publication.tenant_id))
            & (col(ContentItem.id) == col(Publication.content_item_id)),
        )
        .where(Publication.tenant_id == principal.tenant_id, item_visibility(principal, verb))
    )


async def load_publication(
    session: AsyncSession,
    principal: Principal,
    publication_id: uuid.UUID,
    verb: Verb = Verb.read,
    *,
    lock: bool = False,
) -> Publication:
    publication: Publication = await load_readable(
        session,
        readable_publications(principal, verb).where(col(Publication.id) == publication_id),
        lock=lock,
        missing=errors.PublicationNotFound(),
    )
    return publication


async def _attempts_of(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[PublicationAttempt]]:
    """Every attempt of these publications in one query (no query per row)."""
    found: dict[uuid.UUID, list[PublicationAttempt]] = defaultdict(list)
    if not ids:
        return found
    rows = await session.scalars(
        select(PublicationAttempt)
        .where(
            PublicationAttempt.tenant_id == tenant_id,
            col(PublicationAttempt.publication_id).in_(ids),
        )
        .order_by(col(PublicationAttempt.publication_id), col(PublicationAttempt.number))
    )
    for attempt in rows:
        found[attempt.publication_id].append(attempt)
    return found


def figures_read(publication: Publication) -> PostFiguresRead | None:
    if publication.figures_at is None:
        return None
    return PostFiguresRead(
        impressions=publication.impressions,
        reach=publication.reach,
        engagements=publication.engagements,
        video_views=publication.video_views,
        read_at=publication.figures_at,
    )


def publication_read(
    publication: Publication, attempts: Sequence[PublicationAttempt]
) -> PublicationRead:
    return PublicationRead(
        id=publication.id,
        content_id=publication.content_item_id,
        revision_id=publication.revision_id,
        brand_id=publication.brand_id,
        social_account_id=publication.social_account_id,
        platform=publication.platform,
        status=publication.status,
        planned_at=publication.planned_at,
        deadline_at=publication.deadline_at,
        attempts=[
            AttemptRead(
                number=a.number,
                started_at=a.started_at,
                create_started_at=a.create_started_at,
                finished_at=a.finished_at,
                outcome=a.outcome,
                error=a.error,
            )
            for a in attempts
        ],
        external_post_id=publication.external_post_id,
        permalink=publication.permalink,
        published_at=publication.published_at,
        lateness_seconds=publication.lateness_seconds,
        error_code=publication.error_code,
        error=publication.error,
        figures=figures_read(publication),
        version=publication.version,
        created_at=publication.created_at,
        updated_at=publication.updated_at,
    )


async def _reads(
    session: AsyncSession, tenant_id: uuid.UUID, publications: Sequence[Publication]
) -> list[PublicationRead]:
    attempts = await _attempts_of(session, tenant_id, [p.id for p in publications])
    return [publication_read(p, attempts.get(p.id, [])) for p in publications]


# --- planning --------------------------------------------------------------------------------


async def _approved_revision(session: AsyncSession, item: ContentItem) -> ContentRevision:
    revision = (
        await session.get(ContentRevision, (item.tenant_id, item.current_revision_id))
        if item.current_revision_id is not None
        else None
    )
    if revision is None:
        raise errors.NotPublishable("This item has no revision to publish.")
    return revision


async def _targets(
    session: AsyncSession, item: ContentItem, revision: ContentRevision
) -> list[Target]:
    if not revision.social_account_ids:
        return []
    accounts = (
        await session.scalars(
            select(SocialAccount).where(
                SocialAccount.tenant_id == item.tenant_id,
                col(SocialAccount.id).in_(revision.social_account_ids),
                SocialAccount.brand_id == item.brand_id,
            )
        )
    ).all()
    by_id = {a.id: a for a in accounts}
    missing = [str(i) for i in revision.social_account_ids if i not in by_id]
    if missing:
        raise errors.PublishingChecksFailed(
            [
                {
                    "platform": None,
                    "field": "account",
                    "message": f"The account {account_id} is no longer connected to the brand.",
                    "media_index": None,
                }
                for account_id in missing
            ]
        )
    return [
        Target(
            by_id[i],
            text_for(by_id[i].platform, revision.variants),
            revision.title,
            revision.media,
        )
        for i in revision.social_account_ids
    ]


async def _open_publications(
    session: AsyncSession, item: ContentItem
) -> dict[tuple[uuid.UUID, uuid.UUID], Publication]:
    rows = await session.scalars(
        select(Publication)
        .where(
            Publication.tenant_id == item.tenant_id,
            Publication.content_item_id == item.id,
            Publication.status != PubStatus.canceled,
        )
        .with_for_update()
    )
    return {(p.revision_id, p.social_account_id): p for p in rows}


async def plan(
    session: AsyncSession,
    principal: Principal,
    content_id: uuid.UUID,
    *,
    check: Checker,
    settings: Settings,
) -> list[Publication]:
    """The item (now scheduled) gets one publication per target account, planned at its time.
    A publication not started yet moves to the new time; one that started, went out or failed
    stays as it is (a failed one is retried by a person, never by scheduling again)."""
    item = await load_item(session, principal, content_id, Verb.update, lock=True)
    if item.status != Status.scheduled or item.planned_at is None:
        raise errors.NotPublishable("Only a scheduled item gets publications.")
    revision = await _approved_revision(session, item)
    targets = await _targets(session, item, revision)
    problems = await check(targets)
    if problems:
        raise errors.PublishingChecksFailed(problems)
    now = utcnow()
    planned = item.planned_at
    deadline = planned + timedelta(minutes=settings.publishing_deadline_minutes)
    existing = await _open_publications(session, item)
    planned_now: list[Publication] = []
    for target in targets:
        publication = existing.get((revision.id, target.account.id))
        if publication is None:
            publication = Publication(
                tenant_id=item.tenant_id,
                content_item_id=item.id,
                revision_id=revision.id,
                brand_id=item.brand_id,
                social_account_id=target.account.id,
                platform=target.account.platform,
                planned_at=planned,
                deadline_at=deadline,
            )
            session.add(publication)
        elif publication.status == PubStatus.scheduled:
            step(publication.status, PubEvent.replan)
            publication.planned_at = planned
            publication.deadline_at = deadline
            bump(publication, at=now)
        else:
            continue
        planned_now.append(publication)
    await session.flush()
    for publication in planned_now:
        if publication.planned_at <= now + ENQUEUE_AHEAD:
            enqueue_publish(session, publication, publication.planned_at)
    if planned_now:
        audit(
            session,
            principal,
            item,
            "publications.planned",
            {
                "planned_at": planned.isoformat(),
                "accounts": [str(p.social_account_id) for p in planned_now],
            },
        )
    return planned_now


async def cancel_open(session: AsyncSession, principal: Principal, content_id: uuid.UUID) -> int:
    """Unscheduling (or editing) cancels the publications that have not started."""
    item = await load_item(session, principal, content_id, Verb.update, lock=True)
    now = utcnow()
    canceled = 0
    for publication in (await _open_publications(session, item)).values():
        if can(publication.status, PubEvent.cancel):
            publication.status = step(publication.status, PubEvent.cancel)
            bump(publication, at=now)
            canceled += 1
    if canceled:
        audit(session, principal, item, "publications.canceled", {"count": canceled})
    return canceled


async def publish_now(
    session: AsyncSession,
    principal: Principal,
    content_id: uuid.UUID,
    *,
    check: Checker,
    settings: Settings,
) -> list[PublicationRead]:
    """The item's publications, started now. The caller has scheduled the item at now."""
    publications = await plan(session, principal, content_id, check=check, settings=settings)
    return await _reads(session, principal.tenant_id, publications)


# --- reading ---------------------------------------------------------------------------------


PUBLICATION_ORDER = Keyset(
    "publications",
    [
        SortKey(col(Publication.planned_at), lambda r: r.planned_at, datetime.fromisoformat),
        id_key(col(Publication.id)),
    ],
)

MAX_SPAN = timedelta(days=366)


async def list_for_content(
    session: AsyncSession,
    principal: Principal,
    content_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> Page[PublicationRead]:
    item = await load_item(session, principal, content_id)
    query = readable_publications(principal).where(col(Publication.content_item_id) == item.id)
    query = PUBLICATION_ORDER.apply(query, cursor=cursor, limit=limit)
    rows, after = PUBLICATION_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(items=await _reads(session, principal.tenant_id, rows), next_cursor=after)


async def list_publications(
    session: AsyncSession,
    principal: Principal,
    *,
    status: PubStatus | None,
    start: datetime | None,
    end: datetime | None,
    brand_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> Page[PublicationRead]:
    if start is not None and end is not None:
        if end <= start:
            raise ProblemError("`to` must be after `from`.", field="to")
        if end - start > MAX_SPAN:
            raise ProblemError("Ask for at most 366 days at a time.", field="to")
    query = readable_publications(principal)
    if status is not None:
        query = query.where(col(Publication.status) == status)
    if start is not None:
        query = query.where(col(Publication.planned_at) >= start)
    if end is not None:
        query = query.where(col(Publication.planned_at) < end)
    if brand_id is not None:
        query = query.where(col(Publication.brand_id) == brand_id)
    query = PUBLICATION_ORDER.apply(query, cursor=cursor, limit=limit)
    rows, after = PUBLICATION_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(items=await _reads(session, principal.tenant_id, rows), next_cursor=after)


async def summaries(
    session: AsyncSession, tenant_id: uuid.UUID, item_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, PublicationSummary]:
    """Per item, how many publications are in each status (one query for a calendar page)."""
    if not item_ids:
        return {}
    rows = await session.execute(
        select(Publication.content_item_id, Publication.status, func.count())
        .where(
            Publication.tenant_id == tenant_id,
            col(Publication.content_item_id).in_(item_ids),
            Publication.status != PubStatus.canceled,
        )
        .group_by(col(Publication.content_item_id), col(Publication.status))
    )
    found: dict[uuid.UUID, PublicationSummary] = {}
    for item_id, status, count in rows.all():
        summary = found.setdefault(item_id, PublicationSummary())
        setattr(summary, status, count)
    return found


POST_ORDER = Keyset(
    "posts",
    [
        SortKey(
            col(Publication.published_at),
            lambda r: r[0].published_at,
            datetime.fromisoformat,
            descending=True,
        ),
        id_key(col(Publication.id), lambda r: r[0].id, descending=True),
    ],
)


async def account_posts(
    session: AsyncSession,
    principal: Principal,
    account_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> Page[PostRead]:
    """The account's posts published through us, newest first: the sandbox's feed."""
    account = await load_account(session, principal, account_id, Verb.read)
    query = (
        readable_publications(principal)
        .add_columns(col(ContentRevision.variants), col(ContentRevision.media))
        .join(
            ContentRevision,
            (col(ContentRevision.tenant_id) == col(Publication.tenant_id))
            & (col(ContentRevision.id) == col(Publication.revision_id)),
        )
        .where(
            col(Publication.social_account_id) == account.id,
            col(Publication.status) == PubStatus.published,
        )
    )
    query = POST_ORDER.apply(query, cursor=cursor, limit=limit)
    rows, after = POST_ORDER.page((await session.execute(query)).all(), limit=limit)
    return Page(
        items=[
            PostRead(
                publication_id=publication.id,
                content_id=publication.content_item_id,
                external_post_id=publication.external_post_id or "",
                permalink=publication.permalink,
                text=text_for(publication.platform, variants) or "",
                media=list(media),
                published_at=publication.published_at or publication.updated_at,
                figures=figures_read(publication),
            )
            for publication, variants, media in rows
        ],
        next_cursor=after,
    )


# --- a person's retry ------------------------------------------------------------------------


async def retry(
    session: AsyncSession,
    principal: Principal,
    publication_id: uuid.UUID,
    *,
    confirm_not_published: bool,
    settings: Settings,
) -> PublicationRead:
    """A failed publication goes again now. One whose outcome is unknown (unconfirmed, or
    failed after reconciliation found nothing) only on the word of a person who checked."""
    publication = await load_publication(session, principal, publication_id, Verb.update, lock=True)
    status = PubStatus(publication.status)
    unknown = status == PubStatus.unconfirmed or publication.error_code == "outcome_unknown"
    if unknown and not confirm_not_published:
        raise errors.ConfirmationRequired(
            "This post may be live: check the account, then retry with "
            '{"confirm_not_published": true} if it is not there.'
        )
    event = PubEvent.confirm_not_published if status == PubStatus.unconfirmed else PubEvent.retry
    if not can(status, event):
        raise errors.CannotRetry(f"A {status.value} publication cannot be retried.")
    item = await session.get(ContentItem, (publication.tenant_id, publication.content_item_id))
    assert item is not None  # a foreign key holds it
    if item.status != Status.scheduled or item.current_revision_id != publication.revision_id:
        raise errors.CannotRetry(
            "The item was unscheduled or edited since: schedule it again instead."
        )
    now = utcnow()
    publication.status = step(status, event)
    publication.planned_at = now
    publication.deadline_at = now + timedelta(minutes=settings.publishing_deadline_minutes)
    publication.error = publication.error_code = None
    publication.next_attempt_at = publication.claimed_until = None
    publication.unconfirmed_at = publication.next_check_at = None
    if unknown:
        # Whatever was prepared belongs to a post that may exist: start from nothing.
        publication.state = {}
    bump(publication, at=now)
    record_audit(
        session,
        tenant_id=publication.tenant_id,
        actor=principal,
        request_id=principal.request_id,
        action="publication.retried",
        subject_type="publication",
        subject_id=publication.id,
        changes={"from": status.value, "confirmed_not_published": confirm_not_published},
    )
    await session.flush()
    enqueue_publish(session, publication, now)
    attempts = await _attempts_of(session, publication.tenant_id, [publication.id])
    return publication_read(publication, attempts.get(publication.id, []))
