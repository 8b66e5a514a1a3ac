"""Request and response models of time budgets. Durations are minutes; money is integer
minor units with an ISO currency."""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from billing.budgets.budget import DEFAULT_THRESHOLDS
from billing.budgets.models import Activity
from tenants.schemas import Currency, Day, Instant, Month, Patch, Strict

MonthStr = Month  # the shared type: the range the API serves is said in the schema
Minutes = Annotated[int, Field(ge=0, le=744 * 60)]
Money = Annotated[int, Field(ge=0, le=10**12, description="Minor units (cents)")]
Note = Annotated[str, StringConstraints(max_length=2000)]
OveragePolicyField = Literal["bill_at_rate", "hard_cap"]
EntryStatusField = Literal["open", "submitted", "approved", "invoiced"]


class Rollover(Strict):
    max_minutes: Annotated[int, Field(ge=1, le=744 * 60)]
    max_months: Annotated[int, Field(ge=1, le=24)]


class Overage(Strict):
    policy: OveragePolicyField
    rate_minor: Money | None = Field(
        default=None, description="Per hour; required for bill_at_rate"
    )


class TermsBody(Strict):
    monthly_minutes: Minutes
    fee_minor: Money
    brand_ids: Annotated[list[uuid.UUID], Field(max_length=200)] | None = Field(
        default=None, description="Only time on these brands counts; all the client's if absent"
    )
    rollover: Rollover | None = None
    overage: Overage
    thresholds: Annotated[list[Annotated[int, Field(ge=1, le=500)]], Field(max_length=10)] = Field(
        default_factory=lambda: list(DEFAULT_THRESHOLDS)
    )

    @field_validator("thresholds")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        return sorted(set(value))


class RetainerCreate(TermsBody):
    client_id: uuid.UUID
    currency: Currency | None = Field(default=None, description="The client's if absent")
    start_month: MonthStr
    end_month: MonthStr | None = None


class RetainerUpdate(TermsBody, Patch):
    """New terms from `effective_month` on; earlier months keep theirs."""

    clearable = frozenset({"brand_ids", "rollover", "end_month"})

    effective_month: MonthStr
    end_month: MonthStr | None = None


class TermsRead(BaseModel):
    effective_month: str
    monthly_minutes: int
    fee_minor: int
    brand_ids: list[uuid.UUID] | None
    rollover: Rollover | None
    overage: Overage
    thresholds: list[int]


class RetainerRead(BaseModel):
    id: uuid.UUID
    client_id: uuid.UUID
    currency: str
    start_month: str
    end_month: str | None
    terms: list[TermsRead] = Field(description="Oldest first; each applies until the next")
    version: int
    created_at: datetime
    updated_at: datetime


class RateCreate(Strict):
    rate_minor: Money
    currency: Currency | None = Field(default=None, description="The agency's if absent")
    user_id: uuid.UUID | None = Field(
        default=None, description="With client_id: this staff member's rate on this client"
    )
    client_id: uuid.UUID | None = None
    role: Literal["owner", "admin", "manager", "member"] | None = None


class RateUpdate(Patch):
    rate_minor: Money


class RateRead(BaseModel):
    id: uuid.UUID
    kind: Literal["member_client", "client", "role", "default"]
    user_id: uuid.UUID | None
    client_id: uuid.UUID | None
    role: str | None
    rate_minor: int
    currency: str
    version: int


class EntryCreate(Strict):
    brand_id: uuid.UUID
    date: Day | None = Field(default=None, description="Local day; from started_at if absent")
    started_at: Instant | None = None
    minutes: Annotated[int, Field(ge=1, le=1500)]
    activity: Activity
    billable: bool = True
    note: Note | None = None
    content_item_id: uuid.UUID | None = None
    inbox_item_id: uuid.UUID | None = Field(
        default=None, description="The inbox item this time answered (same brand)"
    )


class EntryUpdate(Patch):
    clearable = frozenset({"note", "content_item_id"})

    minutes: Annotated[int, Field(ge=1, le=1500)] | None = None
    activity: Activity | None = None
    billable: bool | None = None
    note: Note | None = None
    content_item_id: uuid.UUID | None = None


class EntryRead(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    brand_id: uuid.UUID
    client_id: uuid.UUID
    date: dt.date
    started_at: datetime | None
    minutes: int
    activity: str
    billable: bool
    note: str | None
    content_item_id: uuid.UUID | None
    inbox_item_id: uuid.UUID | None
    status: EntryStatusField
    source: Literal["manual", "timer"]
    flagged_reason: str | None
    rate_minor: int | None = Field(description="Frozen when the timesheet is approved")
    rate_currency: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class TimerStart(Strict):
    brand_id: uuid.UUID
    activity: Activity
    billable: bool = True
    note: Note | None = None
    content_item_id: uuid.UUID | None = None


class TimerRead(BaseModel):
    id: uuid.UUID
    brand_id: uuid.UUID
    activity: str
    billable: bool
    note: str | None
    content_item_id: uuid.UUID | None
    started_at: datetime
    elapsed_minutes: int


class CurrentTimer(BaseModel):
    timer: TimerRead | None


class TimerStopped(BaseModel):
    entries: list[EntryRead] = Field(description="One per local day the timer ran on")
    flagged: bool = Field(description="Stopped after 12 hours: check the time")


class TimesheetReturn(Strict):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class TimesheetDay(BaseModel):
    date: dt.date
    minutes: int


class TimesheetRead(BaseModel):
    user_id: uuid.UUID
    week: str
    status: Literal["open", "submitted", "approved", "returned"]
    reason: str | None
    submitted_at: datetime | None
    decided_by: uuid.UUID | None
    decided_at: datetime | None
    total_minutes: int
    days: list[TimesheetDay]
    entries: list[EntryRead]


class Breakdown(BaseModel):
    id: uuid.UUID | None = Field(description="None: entries not linked to any")
    name: str | None = None
    minutes: int
    amount_minor: int | None = Field(
        default=None, description="At frozen or resolved rates; managers only"
    )


class ActivityBreakdown(BaseModel):
    activity: str
    minutes: int


class BudgetRead(BaseModel):
    client_id: uuid.UUID
    client_name: str
    month: str
    retainer_id: uuid.UUID
    currency: str
    included_minutes: int
    rolled_over_minutes: int
    available_minutes: int
    used_minutes: int
    remaining_minutes: int
    projected_minutes: int
    overage_minutes: int
    non_billable_minutes: int
    percent_used: float
    overage_policy: OveragePolicyField
    thresholds_crossed: list[int]
    fee_minor: int | None = Field(description="Managers only")
    overage_amount_minor: int | None = Field(description="Managers only")
    by_brand: list[Breakdown]
    by_person: list[Breakdown]
    by_activity: list[ActivityBreakdown]
    by_content_item: list[Breakdown]


class BudgetSummary(BaseModel):
    client_id: uuid.UUID
    client_name: str
    retainer_id: uuid.UUID
    available_minutes: int
    used_minutes: int
    projected_minutes: int
    overage_minutes: int
    percent_used: float
    projected_percent: float = Field(description="Risk of overrun: sorted by this, highest first")
    overage_policy: OveragePolicyField
