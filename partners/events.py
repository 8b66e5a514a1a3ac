"""The events partners can subscribe to. Each is an outbox event: written in the same
transaction as the change, so a rolled-back change sends nothing, and its id is the
`webhook-id` partners de-duplicate on. Internal events (invitations, reminders sent) are
not published: their payloads are for our own mailers."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    content_submitted = "content.submitted"
    content_approved = "content.approved"
    content_rejected = "content.rejected"
    content_changes_requested = "content.changes_requested"
    content_scheduled = "content.scheduled"
    content_published = "content.published"
    content_publish_failed = "content.publish_failed"
    publication_unconfirmed = "publication.unconfirmed"
    approval_requested = "approval.requested"
    approval_expired = "approval.expired"
    approval_escalated = "approval.escalated"
    budget_threshold_crossed = "budget.threshold_crossed"
    invoice_draft_created = "invoice.draft_created"
    invoice_finalized = "invoice.finalized"
    invoice_voided = "invoice.voided"
    social_account_connected = "social_account.connected"
    social_account_needs_reauth = "social_account.needs_reauth"
    stats_anomaly = "stats.anomaly"
    member_joined = "member.joined"
    inbox_item_received = "inbox.item_received"
    inbox_sla_breached = "inbox.sla_breached"
    inbox_crisis_suspected = "inbox.crisis_suspected"


PUBLISHED = frozenset(e.value for e in EventType)
