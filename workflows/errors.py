"""Errors of content and approvals, each an RFC 9457 problem with a stable type."""

from __future__ import annotations

from infra.errors import Conflict, Forbidden, NotFound, ProblemError


class ContentNotFound(NotFound):
    type_slug = "content-not-found"
    title = "No such content item"


class RevisionNotFound(NotFound):
    type_slug = "revision-not-found"
    title = "No such revision of this item"


class CommentNotFound(NotFound):
    type_slug = "comment-not-found"
    title = "No such comment on this item"


class TemplateNotFound(NotFound):
    type_slug = "workflow-template-not-found"
    title = "No such workflow template"


class InvalidTransition(Conflict):
    type_slug = "invalid-transition"
    title = "The item's status does not allow this"


class RevisionSuperseded(Conflict):
    type_slug = "revision-superseded"
    title = "This revision is no longer the current one"


class StepClosed(Conflict):
    type_slug = "step-closed"
    title = "This approval step was already decided"


class StepTimedOut(StepClosed):
    """The step's time ran out before anyone decided (the same problem type for the API; a page
    tells it apart)."""


class AlreadyDecided(Conflict):
    type_slug = "already-decided"
    title = "You already decided on this step"


class NotAnApprover(Forbidden):
    type_slug = "not-an-approver"
    title = "You are not an approver of the current step"


class SelfApproval(Forbidden):
    type_slug = "self-approval-refused"
    title = "This workflow does not let you approve your own submission"


class NoApprover(ProblemError):
    status = 422
    type_slug = "no-approver"
    title = "A step of this workflow has nobody to decide"


class ChecksFailed(ProblemError):
    status = 422
    type_slug = "checks-failed"
    title = "The item fails checks this workflow treats as blocking"


class ReasonRequired(ProblemError):
    status = 422
    type_slug = "reason-required"
    title = "Say what to change: a comment is required"


class InvalidTemplate(ProblemError):
    status = 422
    type_slug = "invalid-workflow-template"
    title = "This workflow template cannot work"


class InvalidComment(ProblemError):
    status = 422
    type_slug = "invalid-comment"
    title = "This comment cannot be placed there"


class PlannedInPast(ProblemError):
    status = 422
    type_slug = "planned-in-past"
    title = "A post can only be scheduled in the future"


# Approval links: each reason a link is not accepted has its own answer.


class LinkInvalid(NotFound):
    type_slug = "approval-link-invalid"
    title = "This approval link is not valid"


class LinkUsed(ProblemError):
    status = 410
    type_slug = "approval-link-used"
    title = "This approval link was already used"


class LinkExpired(ProblemError):
    status = 410
    type_slug = "approval-link-expired"
    title = "This approval link has expired"


class LinkSuperseded(Conflict):
    type_slug = "approval-link-superseded"
    title = "The content changed since this link was sent"
