"""Optimistic versions (tenants/service/common.py): the If-Match check and the bump. Pure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from infra.errors import PreconditionFailed
from tenants.service.common import bump, check_version

AT = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


@dataclass
class _Thing:
    version: int
    updated_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@pytest.mark.parametrize(
    ("current", "if_match", "refused"),
    [
        (1, None, False),
        (1, 1, False),
        (7, 7, False),
        (7, 6, True),
        (7, 8, True),
        (1, -1, True),  # an ETag this API never gave
        (0, -1, True),
    ],
)
def test_if_match_must_name_the_current_version(current, if_match, refused):
    if refused:
        with pytest.raises(PreconditionFailed):
            check_version(current, if_match)
    else:
        check_version(current, if_match)


@pytest.mark.parametrize("version", [1, 2, 41])
def test_bump_moves_to_the_next_version_at_the_given_moment(version):
    thing = _Thing(version)
    bump(thing, at=AT)
    assert (thing.version, thing.updated_at) == (version + 1, AT)
    check_version(thing.version, version + 1)
    with pytest.raises(PreconditionFailed):
        check_version(thing.version, version)


def test_bump_without_a_moment_uses_the_application_clock(clock):
    clock.set(AT, tick=False)
    thing = _Thing(1)
    bump(thing)
    assert (thing.version, thing.updated_at) == (2, AT)
