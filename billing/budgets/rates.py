"""Hourly rate resolution, pure: the most specific rate wins.

member on this client > client > role > the agency's default.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateRule:
    id: uuid.UUID
    rate_minor: int
    currency: str
    membership_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    role: str | None = None

    @property
    def kind(self) -> str:
        if self.membership_id is not None and self.client_id is not None:
            return "member_client"
        if self.membership_id is not None:
            # A member without a client is not a supported shape: it must never be taken
            # for the default (or a role rule) and so apply to everybody.
            return "member_only"
        if self.client_id is not None:
            return "client"
        if self.role is not None:
            return "role"
        return "default"


_RANK = {"member_client": 0, "client": 1, "role": 2, "default": 3}


def resolve_rate(
    rules: Iterable[RateRule], *, membership_id: uuid.UUID, client_id: uuid.UUID, role: str
) -> RateRule | None:
    best: RateRule | None = None
    for rule in rules:
        kind = rule.kind
        applies = (
            (
                kind == "member_client"
                and rule.membership_id == membership_id
                and rule.client_id == client_id
            )
            or (kind == "client" and rule.client_id == client_id)
            or (kind == "role" and rule.role == role)
            or kind == "default"
        )
        if applies and (best is None or _RANK[kind] < _RANK[best.kind]):
            best = rule
    return best
