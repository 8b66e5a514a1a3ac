"""A publication's life as a pure table: which event moves it from which status to which.

    scheduled -> publishing -> published | failed | unconfirmed | canceled

`publishing` covers every attempt until a definite outcome, transient waits included (the
attempt rows say what happened each time). `unconfirmed` is the one status nobody may leave by
posting again on their own: reconciliation settles it (found -> published, not found ->
failed), or a person who checked the account confirms it was not published.
"""

from __future__ import annotations

from enum import StrEnum


class PubStatus(StrEnum):
    scheduled = "scheduled"
    publishing = "publishing"
    published = "published"
    failed = "failed"
    unconfirmed = "unconfirmed"
    canceled = "canceled"


class PubEvent(StrEnum):
    start = "start"
    """Its time came (or publish-now): an attempt begins."""
    posted = "posted"
    """The platform answered the create call with the post."""
    refused = "refused"
    """A definite refusal, a token needing re-authorization, or the deadline passed."""
    wait = "wait"
    """A transient failure before the create call: try again after a pause."""
    unknown = "unknown"
    """The create call may have posted (timeout, dropped connection, crash after it)."""
    found = "found"
    not_found = "not_found"
    cancel = "cancel"
    """Unscheduled, or its item edited, before any attempt started."""
    replan = "replan"
    """A new planned time for a publication that has not started."""
    retry = "retry"
    """A person asks to try a failed one again."""
    confirm_not_published = "confirm_not_published"
    """A person checked the account: the unconfirmed post is not there."""


S, E = PubStatus, PubEvent

TRANSITIONS: dict[tuple[PubStatus, PubEvent], PubStatus] = {
    (S.scheduled, E.start): S.publishing,
    (S.scheduled, E.cancel): S.canceled,
    (S.scheduled, E.replan): S.scheduled,
    (S.publishing, E.start): S.publishing,
    (S.publishing, E.posted): S.published,
    (S.publishing, E.refused): S.failed,
    (S.publishing, E.wait): S.publishing,
    (S.publishing, E.unknown): S.unconfirmed,
    (S.unconfirmed, E.found): S.published,
    (S.unconfirmed, E.posted): S.published,
    (S.unconfirmed, E.not_found): S.failed,
    (S.unconfirmed, E.confirm_not_published): S.scheduled,
    (S.failed, E.retry): S.scheduled,
    # A create call still running when its lease ran out answered after all.
    (S.failed, E.posted): S.published,
}

FINAL = frozenset({S.published, S.canceled})
OPEN = frozenset({S.scheduled, S.publishing, S.unconfirmed})
"""Not settled yet: the calendar shows these as pending."""


class TransitionRefused(Exception):
    def __init__(self, status: PubStatus, event: PubEvent) -> None:
        super().__init__(f"A {status.value} publication cannot {event.value.replace('_', ' ')}.")
        self.status = status
        self.event = event


def step(status: PubStatus | str, event: PubEvent) -> PubStatus:
    try:
        return TRANSITIONS[(PubStatus(status), event)]
    except KeyError:
        raise TransitionRefused(PubStatus(status), event) from None


def can(status: PubStatus | str, event: PubEvent) -> bool:
    return (PubStatus(status), event) in TRANSITIONS
