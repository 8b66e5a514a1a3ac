"""Errors of time budgets, each an RFC 9457 problem with a stable type."""

from __future__ import annotations

from infra.errors import Conflict, NotFound, ProblemError


class RetainerNotFound(NotFound):
    type_slug = "retainer-not-found"
    title = "No such retainer"


class RetainerOverlap(Conflict):
    type_slug = "retainer-overlap"
    title = "This client already has a retainer for some of these months"


class PastMonth(ProblemError):
    status = 422
    type_slug = "past-month"
    title = "Past months keep the terms they had"


class MonthOutsideRetainer(ProblemError):
    status = 422
    type_slug = "month-outside-retainer"
    title = "This month is outside the retainer"


class NoRetainer(ProblemError):
    status = 422
    type_slug = "no-retainer"
    title = "No retainer covers this month for this client"


class RateNotFound(NotFound):
    type_slug = "rate-not-found"
    title = "No such rate"


class RateExists(Conflict):
    type_slug = "rate-exists"
    title = "A rate already exists for exactly this scope"


class TimeEntryNotFound(NotFound):
    type_slug = "time-entry-not-found"
    title = "No such time entry"


class EntryLocked(Conflict):
    type_slug = "time-entry-locked"
    title = "This time entry is locked"


class WeekLocked(Conflict):
    type_slug = "week-locked"
    title = "This week's timesheet is submitted or approved: its time is locked"


class NotAssigned(ProblemError):
    status = 422
    type_slug = "not-assigned"
    title = "You are not assigned to this brand on that date"


class DayOverfull(ProblemError):
    status = 422
    type_slug = "day-overfull"
    title = "A day cannot hold more time than it has"


class FutureDate(ProblemError):
    status = 422
    type_slug = "future-date"
    title = "Time can only be logged for days that have begun"


class DateMismatch(ProblemError):
    status = 422
    type_slug = "date-mismatch"
    title = "The date and the start time name different days"


class BudgetExhausted(Conflict):
    type_slug = "budget-exhausted"
    title = "This retainer's hours are used up and it is capped"


class TimerRunning(Conflict):
    type_slug = "timer-running"
    title = "You already have a running timer"


class NoTimer(Conflict):
    type_slug = "no-running-timer"
    title = "You have no running timer"


class TimesheetState(Conflict):
    type_slug = "timesheet-state"
    title = "The timesheet is not in a state that allows this"


class SelfApproval(ProblemError):
    status = 403
    type_slug = "self-approval"
    title = "You cannot approve your own timesheet"


class InvalidWeek(ProblemError):
    status = 422
    type_slug = "invalid-week"
    title = "Weeks are written as ISO weeks, such as 2026-W47"


class BudgetNotFound(NotFound):
    type_slug = "budget-not-found"
    title = "This client has no retainer for that month"


class InvalidTerms(ProblemError):
    status = 422
    type_slug = "invalid-terms"
    title = "These terms do not hold together"


class UnknownContentItem(ProblemError):
    status = 422
    type_slug = "unknown-content-item"
    title = "content_item_id does not name a content item of this brand"
