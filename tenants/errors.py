"""Errors of the directory, each with its HTTP status and stable problem type."""

from infra.errors import Conflict, Forbidden, NotFound, ProblemError, Unauthorized


class InvalidCredentials(Unauthorized):
    type_slug = "invalid-credentials"
    title = "E-mail or password is wrong"


class InvalidToken(Unauthorized):
    type_slug = "invalid-token"
    title = "The access token is not valid"


class InvalidRefreshToken(Unauthorized):
    type_slug = "invalid-refresh-token"
    title = "The refresh token is not valid"


class RefreshTokenReused(Unauthorized):
    type_slug = "refresh-token-reused"
    title = "This refresh token was already used; the session is revoked"


class TenantRequired(ProblemError):
    status = 409
    type_slug = "tenant-required"
    title = "You belong to several agencies: say which one"


class PermissionDenied(Forbidden):
    type_slug = "permission-denied"
    title = "Your role does not allow this"


class MemberNotFound(NotFound):
    type_slug = "member-not-found"
    title = "No such member"


class InvitationInvalid(ProblemError):
    status = 410
    type_slug = "invitation-invalid"
    title = "This invitation cannot be used"


class SlugTaken(Conflict):
    type_slug = "slug-taken"
    title = "That agency address is taken"


class EmailTaken(Conflict):
    type_slug = "email-taken"
    title = "An account already uses this e-mail; log in with its password"


class AlreadyMember(Conflict):
    type_slug = "already-member"
    title = "This person is already a member of the agency"


class InvitationPending(Conflict):
    type_slug = "invitation-pending"
    title = "An invitation to this e-mail is already pending"


class LastOwner(Conflict):
    type_slug = "last-owner"
    title = "The agency must keep at least one active owner"


class InvalidRoleChange(ProblemError):
    status = 422
    type_slug = "invalid-role-change"
    title = "This role change is not allowed"


class NameRequired(ProblemError):
    status = 422
    type_slug = "name-required"
    title = "Give your name to create your account"
