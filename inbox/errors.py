"""The inbox's errors, each with its HTTP status and stable type."""

from __future__ import annotations

from infra.errors import Conflict, NotFound, ProblemError, Unauthorized


class ItemNotFound(NotFound):
    type_slug = "inbox-item-not-found"
    title = "Inbox item not found"


class SavedReplyNotFound(NotFound):
    type_slug = "saved-reply-not-found"
    title = "Saved reply not found"


class RuleNotFound(NotFound):
    type_slug = "inbox-rule-not-found"
    title = "Inbox rule not found"


class ResponsePolicyNotFound(NotFound):
    type_slug = "response-policy-not-found"
    title = "This client has no response policy"


class ActionNotFound(NotFound):
    type_slug = "inbox-action-not-found"
    title = "Reply or moderation not found"


class ItemChanged(ProblemError):
    """412 with what changed since the agent read the item (the 'traffic cop')."""

    status = 412
    type_slug = "inbox-item-changed"
    title = "Someone changed this item since you read it"


class NotAllowedOnPlatform(ProblemError):
    status = 422
    type_slug = "inbox-not-allowed-on-platform"
    title = "The platform does not allow this on this item"


class NothingToApprove(Conflict):
    type_slug = "inbox-nothing-to-approve"
    title = "This reply is not awaiting approval"


class BadWebhookSignature(Unauthorized):
    type_slug = "platform-webhook-signature"
    title = "The webhook's signature is missing or wrong"


class UnknownPlatform(NotFound):
    type_slug = "platform-webhook-unknown"
    title = "No webhook is received for this platform"


class WebhookNotConfigured(ProblemError):
    status = 503
    type_slug = "platform-webhook-not-configured"
    title = "Webhooks from this platform are not configured"


class BadWebhookBody(ProblemError):
    status = 422
    type_slug = "platform-webhook-body"
    title = "The webhook's body is not an event of this platform"
