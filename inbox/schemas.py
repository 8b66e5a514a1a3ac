"""What the API says about the inbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from inbox.rules import RuleAction, RuleCondition
from social.schemas import CommunityFigures
from tenants.schemas import Patch, Strict

ItemStatusField = Literal["new", "assigned", "waiting", "done"]
KindField = Literal["comment", "reply", "mention", "message", "review"]
SentimentField = Literal["negative", "neutral", "positive"]
PriorityField = Literal["low", "normal", "high", "urgent"]
ModerationField = Literal["visible", "hidden", "deleted"]
SlaField = Literal["none", "within", "at_risk", "breached", "met", "missed"]
ActionStatusField = Literal[
    "awaiting_approval", "queued", "sending", "sent", "failed", "unconfirmed", "canceled"
]
Label = Annotated[str, StringConstraints(min_length=1, max_length=40, strip_whitespace=True)]
ReplyText = Annotated[str, StringConstraints(min_length=1, max_length=8000)]


class AuthorRead(BaseModel):
    id: str = Field(description="The author's id on the platform")
    handle: str | None
    name: str | None


class ActionRead(BaseModel):
    id: uuid.UUID
    kind: Literal["reply", "private_reply", "hide", "unhide", "delete"]
    status: ActionStatusField
    text: str | None
    requested_by: uuid.UUID | None = Field(description="The user who asked for it")
    approved_by: uuid.UUID | None
    created_at: datetime
    sent_at: datetime | None
    external_id: str | None
    permalink: str | None
    error_code: str | None
    error: str | None


class ItemRead(BaseModel):
    id: uuid.UUID
    brand_id: uuid.UUID
    client_id: uuid.UUID
    social_account_id: uuid.UUID
    platform: str
    kind: KindField
    external_id: str
    thread_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    parent_external_id: str | None
    author: AuthorRead
    text: str
    media: list[dict[str, Any]]
    platform_created_at: datetime
    received_at: datetime
    language: str | None = Field(description="fr or en when detected")
    sentiment: SentimentField | None
    sentiment_score: float | None = Field(description="-1 (negative) to 1 (positive)")
    from_account: bool = Field(description="Written by the brand's own account")
    needs_reply: bool
    status: ItemStatusField
    assignee_id: uuid.UUID | None = Field(description="The user it is assigned to")
    labels: list[str]
    priority: PriorityField
    moderation: ModerationField
    pinned: bool = Field(description="Part of a suspected crisis: kept at the top")
    crisis_id: uuid.UUID | None
    response_due_at: datetime | None
    first_response_at: datetime | None
    sla: SlaField
    version: int


class ViewerRead(BaseModel):
    user_id: uuid.UUID
    since: datetime


class ItemDetail(ItemRead):
    thread: list[ItemRead] = Field(description="The thread's items, oldest first (at most 200)")
    actions: list[ActionRead]
    viewers: list[ViewerRead] = Field(description="Colleagues who have it open now")


class ReplyCreate(Strict):
    text: ReplyText
    private: bool = Field(
        default=False, description="Answer a public comment in private, where the platform can"
    )
    minutes_spent: Annotated[int, Field(ge=1, le=600)] | None = Field(
        default=None, description="Logged against the client's retainer, linked to the item"
    )
    done: bool = Field(default=False, description="Mark the item done once answered")


class ReplyResult(BaseModel):
    item: ItemRead
    action: ActionRead
    warnings: list[dict[str, Any]] = Field(description="The pre-send check's remarks")


class AssignRequest(Strict):
    assignee_id: uuid.UUID | None = Field(description="A user of the agency; null to unassign")


class StatusRequest(Strict):
    status: ItemStatusField


class HideRequest(Strict):
    hidden: bool = True


class LabelsRequest(Strict):
    add: Annotated[list[Label], Field(max_length=20)] = Field(default_factory=list)
    remove: Annotated[list[Label], Field(max_length=20)] = Field(default_factory=list)


class ModerationResult(BaseModel):
    item: ItemRead
    action: ActionRead


# --- saved replies ----------------------------------------------------------------------------

Name = Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=8000)]


class SavedReplyCreate(Strict):
    brand_id: uuid.UUID | None = Field(default=None, description="Null: for the whole agency")
    name: Name
    language: Literal["fr", "en"]
    body: Body = Field(description="Variables: {first_name}, {brand}, {agent_first_name}")


class SavedReplyUpdate(Patch):
    name: Name | None = None
    language: Literal["fr", "en"] | None = None
    body: Body | None = None


class SavedReplyRead(BaseModel):
    id: uuid.UUID
    brand_id: uuid.UUID | None
    name: str
    language: str
    body: str
    variables: list[str]
    version: int
    created_at: datetime
    updated_at: datetime


class RenderRequest(Strict):
    item_id: uuid.UUID


class RenderedReply(BaseModel):
    text: str
    warnings: list[dict[str, Any]]


# --- rules ------------------------------------------------------------------------------------


class InboxRuleCreate(Strict):
    brand_id: uuid.UUID
    name: Name
    position: Annotated[int, Field(ge=0, le=10_000)] | None = Field(
        default=None, description="Where it runs among the brand's rules (default: last)"
    )
    enabled: bool = True
    stop_processing: bool = False
    condition: RuleCondition
    action: RuleAction


class InboxRuleUpdate(Patch):
    name: Name | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None
    enabled: bool | None = None
    stop_processing: bool | None = None
    condition: RuleCondition | None = None
    action: RuleAction | None = None


class InboxRuleRead(BaseModel):
    id: uuid.UUID
    brand_id: uuid.UUID
    name: str
    position: int
    enabled: bool
    stop_processing: bool
    condition: RuleCondition
    action: RuleAction
    version: int
    created_at: datetime


# --- response policies ------------------------------------------------------------------------

Clock = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class HoursInterval(Strict):
    start: Clock
    end: Clock = Field(description="24:00 is written 23:59")


class ResponsePolicyBody(Patch):
    # PUT replaces the policy: a field left out takes its default; null clears only these.
    clearable = frozenset({"hours", "holidays_country", "holidays_subdivision"})

    first_response_minutes: Annotated[int, Field(ge=1, le=30 * 24 * 60)]
    next_response_minutes: Annotated[int, Field(ge=1, le=30 * 24 * 60)]
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "America/Montreal"
    hours: (
        dict[
            Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            Annotated[list[HoursInterval], Field(max_length=4)],
        ]
        | None
    ) = Field(default=None, description="Business hours per weekday; default Mon–Fri 9–17")
    holidays_country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = "CA"
    holidays_subdivision: Annotated[str, StringConstraints(max_length=8)] | None = "QC"
    count_nights: bool = False
    count_weekends: bool = False


class ResponsePolicyRead(ResponsePolicyBody):
    client_id: uuid.UUID
    version: int
    updated_at: datetime


# --- suspected crises -------------------------------------------------------------------------

CrisisTrigger = Literal["negative", "volume", "keyword"]


class CrisisFigures(BaseModel):
    """One measure of the window against the same hours of the previous days."""

    observed: int = Field(description="Items in the window")
    median: float = Field(description="Usual count for these hours (median of previous days)")
    mad: float = Field(description="Median absolute deviation of the previous days")
    score: float = Field(description="Robust z of `observed`; 4.5 and more is a surge")
    surge: bool


class CrisisRead(BaseModel):
    id: uuid.UUID
    brand_id: uuid.UUID
    social_account_id: uuid.UUID | None = Field(description="None: the brand as a whole")
    trigger: CrisisTrigger = Field(description="The main reason")
    triggers: list[CrisisTrigger] = Field(description="Everything that fired, main first")
    started_at: datetime = Field(description="When the warning was raised")
    last_signal_at: datetime = Field(description="When the surge was last seen")
    window_start: datetime = Field(description="The hours judged, from...")
    window_end: datetime = Field(description="...to (exclusive)")
    negative: CrisisFigures | None = Field(description="None while the history is too short")
    volume: CrisisFigures | None
    keyword_hits: int = Field(description="Items of the window using a watch-list word")
    keywords: list[str] = Field(description="The watch-list words used")
    item_ids: list[uuid.UUID] = Field(description="The items behind it, pinned in the inbox")


# --- figures ----------------------------------------------------------------------------------

GroupByField = Literal["client", "brand", "agent"]


class InboxStatsGroup(CommunityFigures):
    id: uuid.UUID | None = Field(
        description="The client, the brand or the member (a user id); by agent, null "
        "gathers the items nobody answered through us and nobody is assigned"
    )
    name: str | None


class InboxStats(BaseModel):
    month: str
    by: GroupByField
    timezone: str = Field(description="The agency's: the month runs midnight to midnight there")
    starts_at: datetime
    ends_at: datetime
    totals: CommunityFigures = Field(description="Every item the groups cover")
    groups: list[InboxStatsGroup] = Field(
        description="One per client, brand or member with items in the month, by name"
    )
