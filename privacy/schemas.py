"""Request and response models of the data rights."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, EmailStr, Field

from tenants.schemas import Strict


class ExportCreate(Strict):
    client_id: uuid.UUID | None = None
    """One client's data; left out, the whole agency's."""


class ExportProgress(BaseModel):
    kinds_done: int
    kinds_total: int
    rows_written: int
    media_files: int


class ExportRead(BaseModel):
    id: uuid.UUID
    client_id: uuid.UUID | None
    scope: str
    status: str
    progress: ExportProgress
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    size_bytes: int | None
    sha256: str | None
    error: str | None
    manifest: dict[str, Any] | None
    version: int


class ExportLink(BaseModel):
    url: str
    expires_at: datetime


ErasureSubject = Literal["client_contact", "external_approver", "inbox_author"]

FIELDS_OF: dict[str, tuple[str, ...]] = {
    "client_contact": ("user_id",),
    "external_approver": ("email",),
    "inbox_author": ("social_account_id", "author_id"),
}
"""The fields that name the person, per kind of person (privacy.erasure checks them)."""


class ErasureCreate(Strict):
    """Who to erase: a client contact by `user_id`, an external approver by `email`, an inbox
    author by `social_account_id` and the platform's `author_id`."""

    subject: ErasureSubject
    user_id: uuid.UUID | None = None
    email: EmailStr | None = None
    social_account_id: uuid.UUID | None = None
    author_id: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class ErasureRead(BaseModel):
    id: uuid.UUID
    subject: str
    pseudonym: str
    scope: Literal["global", "tenant"]
    counts: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ClosureCreate(Strict):
    confirm: Annotated[str, Field(min_length=1, max_length=63)]
    """The agency's slug, typed again."""


class ClosureRead(BaseModel):
    id: uuid.UUID
    step: str
    archived_invoices: int
    revoked_accounts: int
    deleted_rows: int
    last_error: str | None
    """Why the last attempt failed (it is retried with backoff)."""
    created_at: datetime
    closed_at: datetime | None
