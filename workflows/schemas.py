"""Request and response models of content and approvals."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, EmailStr, Field, StringConstraints, model_validator

from tenants.models import AssignmentRole
from tenants.schemas import Instant, Patch, Strict

# One line: a title becomes an e-mail subject, where a line break is refused.
Title = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
# A template's name is stored in 120 characters.
TemplateName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
Platform = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
PostText = Annotated[str, StringConstraints(max_length=70_000)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
CommentText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)
]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000)]
StatusField = Literal[
    "draft",
    "in_review",
    "awaiting_client",
    "approved",
    "scheduled",
    "changes_requested",
    "rejected",
    "expired",
]
DecisionField = Literal["approve", "request_changes", "reject"]
Visibility = Literal["internal", "client"]
CheckKind = Literal["banned_word", "too_long", "missing_alt_text", "broken_link", "spelling"]


class Media(Strict):
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)]
    type: Literal["image", "video", "gif", "document"]
    alt_text: Annotated[str, StringConstraints(max_length=1500)] = ""


Variants = Annotated[
    dict[Platform, PostText],
    Field(max_length=12, description='Text per platform, e.g. {"instagram": "…"}'),
]


class ContentCreate(Strict):
    title: Title
    variants: Variants = Field(default_factory=dict)
    media: Annotated[list[Media], Field(max_length=20)] = Field(default_factory=list)
    social_account_ids: Annotated[list[uuid.UUID], Field(max_length=50)] = Field(
        default_factory=list
    )
    planned_at: Instant | None = None
    campaign: Label | None = None
    labels: Annotated[list[Label], Field(max_length=30)] = Field(default_factory=list)
    template_id: uuid.UUID | None = Field(
        default=None, description="The workflow for this item; the brand's default if absent"
    )


class ContentUpdate(Patch):
    """Any field given makes a new revision; an item under review starts over. null clears
    planned_at, campaign and template_id; the rest cannot be emptied by null."""

    clearable = frozenset({"planned_at", "campaign", "template_id"})

    title: Title | None = None
    variants: Variants | None = None
    media: Annotated[list[Media], Field(max_length=20)] | None = None
    social_account_ids: Annotated[list[uuid.UUID], Field(max_length=50)] | None = None
    planned_at: Instant | None = None
    campaign: Label | None = None
    labels: Annotated[list[Label], Field(max_length=30)] | None = None
    template_id: uuid.UUID | None = None


class RevisionRead(BaseModel):
    id: uuid.UUID
    number: int
    author_id: uuid.UUID | None
    title: str
    variants: dict[str, str]
    media: list[dict[str, Any]]
    social_account_ids: list[uuid.UUID]
    planned_at: datetime | None
    campaign: str | None
    labels: list[str]
    created_at: datetime


class StepState(BaseModel):
    index: int
    name: str
    kind: Literal["internal", "client"]
    rule: Literal["any", "all"]
    started_at: datetime | None
    due_at: datetime | None
    approvers: list[str] = Field(
        description="user:<id> or email:<address>; hidden from client contacts"
    )
    decided: list[str]


class ContentRead(BaseModel):
    id: uuid.UUID
    brand_id: uuid.UUID
    title: str
    status: StatusField
    status_reason: str | None
    planned_at: datetime | None
    campaign: str | None
    labels: list[str]
    template_id: uuid.UUID | None
    revision: RevisionRead | None
    round: int
    step: StepState | None
    submitted_at: datetime | None
    comment_count: int = Field(description="Only the comments this caller may see")
    version: int
    created_at: datetime
    updated_at: datetime


class ContentSummary(BaseModel):
    id: uuid.UUID
    brand_id: uuid.UUID
    title: str
    status: StatusField
    planned_at: datetime | None
    campaign: str | None
    labels: list[str]
    revision_number: int
    version: int
    created_at: datetime
    updated_at: datetime


class SubmitRequest(Strict):
    revision_id: uuid.UUID | None = Field(
        default=None, description="The revision you reviewed; 409 if it is no longer current"
    )


class ScheduleRequest(Strict):
    planned_at: Instant | None = Field(
        default=None, description="The item's planned time if absent; must be in the future"
    )


class DecisionCreate(Strict):
    revision_id: uuid.UUID = Field(description="The revision you are deciding on")
    decision: DecisionField
    comment: Reason | None = Field(default=None, description="Required to request changes")


class DecisionRead(BaseModel):
    id: uuid.UUID
    revision_id: uuid.UUID
    round: int
    step_index: int
    step_kind: str
    decision: DecisionField
    comment: str | None
    actor_type: Literal["user", "link", "system"]
    user_id: uuid.UUID | None
    email: str | None
    channel: Literal["app", "portal", "link", "api", "system"]
    created_at: datetime


class Anchor(Strict):
    revision_id: uuid.UUID
    platform: Platform | None = Field(default=None, description="The variant; the title if absent")
    start: Annotated[int, Field(ge=0, le=70_000)]
    end: Annotated[int, Field(ge=0, le=70_000)]

    @model_validator(mode="after")
    def _ordered(self) -> Anchor:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class CommentCreate(Strict):
    body: CommentText
    visibility: Visibility = Field(
        default="internal", description="Client contacts always write client comments"
    )
    parent_id: uuid.UUID | None = None
    anchor: Anchor | None = None


class CommentRead(BaseModel):
    id: uuid.UUID
    parent_id: uuid.UUID | None
    visibility: Visibility
    body: str
    anchor: dict[str, Any] | None
    author_type: Literal["user", "link"]
    author_id: uuid.UUID | None
    author_name: str
    mentions: list[uuid.UUID]
    created_at: datetime


class HistoryEntry(BaseModel):
    action: str
    actor_type: str
    actor_id: uuid.UUID | None
    details: dict[str, Any]
    created_at: datetime


# ---------------------------------------------------------------------------------------------
# Templates

TimeoutPolicyField = Literal["remind", "escalate", "auto_approve", "expire"]


class Timeout(Strict):
    policy: TimeoutPolicyField = "remind"
    reminder_hours: Annotated[
        list[Annotated[int, Field(ge=0, le=24 * 30)]], Field(min_length=1, max_length=10)
    ] = Field(
        default_factory=lambda: [0, 24],
        description="For remind: hours after the due time at which approvers are reminded",
    )
    escalate_to: uuid.UUID | None = Field(
        default=None, description="For escalate: the staff member who may then decide"
    )

    @model_validator(mode="after")
    def _escalation_target(self) -> Timeout:
        if (self.policy == "escalate") != (self.escalate_to is not None):
            raise ValueError("escalate_to is required with, and only with, policy escalate")
        return self


class Step(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    kind: Literal["internal", "client"]
    rule: Literal["any", "all"] = "any"
    user_ids: Annotated[list[uuid.UUID], Field(max_length=50)] = Field(
        default_factory=list,
        description="Internal: named staff; client: named client contacts",
    )
    assignment_role: AssignmentRole | None = Field(
        default=None, description="Internal: whoever holds this role on the brand"
    )
    emails: Annotated[list[EmailStr], Field(max_length=50)] = Field(
        default_factory=list, description="Client: external approvers with no account"
    )
    due_hours: Annotated[int, Field(ge=1, le=24 * 60)] = 48
    timeout: Timeout = Field(default_factory=Timeout)

    @model_validator(mode="after")
    def _approvers(self) -> Step:
        if self.kind == "internal":
            if self.emails:
                raise ValueError("an internal step has staff approvers, not e-mail addresses")
            if not self.user_ids and self.assignment_role is None:
                raise ValueError("an internal step needs user_ids or an assignment_role")
        elif self.assignment_role is not None:
            raise ValueError("a client step has client contacts or e-mail addresses")
        return self


class TemplateCreate(Strict):
    name: TemplateName
    description: Annotated[str, StringConstraints(max_length=1000)] | None = None
    steps: Annotated[list[Step], Field(max_length=10)] = Field(
        description="In order; an empty list means no approval"
    )
    allow_self_approval: bool = False
    client_agreed_auto_approve: bool = Field(
        default=False,
        description="The client agreed that silence past a client step's due time approves",
    )
    blocking_checks: Annotated[list[CheckKind], Field(max_length=5)] = Field(
        default_factory=list, description="Checks whose warnings refuse a submission"
    )
    is_tenant_default: bool = False
    brand_ids: Annotated[list[uuid.UUID], Field(max_length=500)] = Field(
        default_factory=list, description="Brands that use this template by default"
    )

    @model_validator(mode="after")
    def _auto_approve(self) -> TemplateCreate:
        for step in self.steps:
            if step.timeout.policy == "auto_approve" and (
                step.kind != "client" or not self.client_agreed_auto_approve
            ):
                raise ValueError(
                    "auto_approve is only for client steps of a template the client agreed to"
                )
        return self


class TemplateUpdate(TemplateCreate, Patch):
    clearable = frozenset({"description"})

    archived: bool = False


class TemplateRead(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    steps: list[dict[str, Any]]
    allow_self_approval: bool
    client_agreed_auto_approve: bool
    blocking_checks: list[str]
    is_tenant_default: bool
    brand_ids: list[uuid.UUID]
    archived: bool
    version: int
    created_at: datetime
    updated_at: datetime


# ---------------------------------------------------------------------------------------------
# Checks, portal, links, calendar


class CheckRead(BaseModel):
    kind: CheckKind
    message: str
    platform: str | None
    start: int | None
    end: int | None
    media_index: int | None
    suggestions: list[str]
    blocking: bool


class ChecksResponse(BaseModel):
    revision_id: uuid.UUID | None
    language: str
    warnings: list[CheckRead]
    blocking: bool = Field(description="Whether these warnings would refuse a submission")


class InboxItem(BaseModel):
    id: uuid.UUID
    brand_id: uuid.UUID
    brand_name: str
    title: str
    planned_at: datetime | None
    revision_id: uuid.UUID
    step_name: str
    due_at: datetime | None
    comment_count: int


class LinkMedia(BaseModel):
    url: str
    type: str
    alt_text: str


class LinkAnchor(BaseModel):
    platform: str | None = Field(description="The variant commented on; the title if absent")
    start: int
    end: int
    quote: str | None


class LinkComment(BaseModel):
    """A client-visible comment as an external approver reads it: who wrote it by name only."""

    author_name: str
    body: str
    anchor: LinkAnchor | None
    created_at: datetime


class LinkView(BaseModel):
    """What an external approver sees: the post as it was sent to them, the decisions they may
    make and the comments meant for the client. Nothing internal: no id of the item, its
    revisions or the agency's people, no internal comment, label or campaign, no workflow
    state beyond the name of the step they answer for."""

    brand_name: str
    title: str
    revision_number: int = Field(description="Which version of the post this is (1, 2, …)")
    variants: dict[str, str]
    media: list[LinkMedia]
    planned_at: datetime | None
    step_name: str
    email: str = Field(description="The address this link was sent to")
    expires_at: datetime
    decisions: list[DecisionField] = Field(
        description="What may be answered; request_changes needs a comment"
    )
    comments: list[LinkComment]


class LinkDecisionRead(BaseModel):
    """The decision recorded through a link, as its author may read it back."""

    decision: DecisionField
    comment: str | None
    email: str
    created_at: datetime


class LinkDecision(Strict):
    decision: DecisionField
    comment: Reason | None = None


class CalendarItem(BaseModel):
    id: uuid.UUID
    brand_id: uuid.UUID
    title: str
    status: StatusField
    planned_at: datetime
    campaign: str | None
    labels: list[str]


class DiffRead(BaseModel):
    base: int
    head: int
    title: list[dict[str, str]]
    variants: dict[str, Any]
    media: dict[str, Any]
    fields: dict[str, Any]


class PortalDecision(BaseModel):
    content_id: uuid.UUID
    title: str
    """The title of the revision decided on, as the contact saw it."""
    brand_name: str
    decision: str
    comment: str | None
    created_at: datetime
