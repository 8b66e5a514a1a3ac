"""Errors of the data rights, each with its problem type."""

from __future__ import annotations

from infra.errors import Forbidden, NotFound, ProblemError


class ExportNotFound(NotFound):
    type_slug = "export-not-found"
    title = "No such export"


class ExportNotReady(ProblemError):
    status = 409
    type_slug = "export-not-ready"
    title = "This export has no file to download"


class ExportLinkInvalid(Forbidden):
    type_slug = "export-link-invalid"
    title = "This download link is not valid or has expired"


class ClosureNotConfirmed(ProblemError):
    status = 422
    type_slug = "closure-not-confirmed"
    title = "Type the agency's slug in `confirm` to close it"


class ErasureSubjectNotFound(NotFound):
    type_slug = "erasure-subject-not-found"
    title = "No such person in this agency"
