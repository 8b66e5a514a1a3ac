"""Column helpers and the base for tenant-owned tables.

Every tenant-owned table has `tenant_id` first in its primary key, so that indexes serve
tenant queries and rows can be distributed by tenant later. Tests find such tables by the
presence of a `tenant_id` column in the metadata.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from infra.clock import utcnow
from infra.ids import new_id


def jsonb_field(**kwargs: Any) -> Any:
    return Field(sa_column=Column(JSONB, nullable=False, **kwargs), default_factory=dict)


def tz_field(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=DateTime(timezone=True), nullable=nullable)


class TenantScoped(SQLModel):
    """Fields shared by every tenant-owned row. Subclasses declare `table=True`."""

    tenant_id: uuid.UUID = Field(primary_key=True, foreign_key="tenants.id")
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_type=DateTime(timezone=True),
        nullable=False,
    )
