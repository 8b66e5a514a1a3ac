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


class ClientNotFound(NotFound):
    type_slug = "client-not-found"
    title = "No such client"


class BrandNotFound(NotFound):
    type_slug = "brand-not-found"
    title = "No such brand"


class AssignmentNotFound(NotFound):
    type_slug = "assignment-not-found"
    title = "No such assignment"


class ClientArchived(Conflict):
    type_slug = "client-archived"
    title = "This client is archived: no new work can start on it"


class BrandArchived(Conflict):
    type_slug = "brand-archived"
    title = "This brand is archived: no new work can start on it"


class BrandSlugTaken(Conflict):
    type_slug = "brand-slug-taken"
    title = "Another brand of the agency uses this slug"


class AssignmentOverlap(Conflict):
    type_slug = "assignment-overlap"
    title = "This person already holds this role on this brand for some of these days"


class NotStaff(ProblemError):
    status = 422
    type_slug = "not-staff"
    title = "Only active staff members can be assigned to a brand"


class InvalidDates(ProblemError):
    status = 422
    type_slug = "invalid-dates"
    title = "The end date comes before the start date"


class PlanLimit(ProblemError):
    status = 409
    type_slug = "plan-limit"
    title = "Your plan's limit is reached"


class InvalidMonth(ProblemError):
    status = 422
    type_slug = "invalid-month"
    title = "Months are written YYYY-MM"


class SubscriptionSuspended(ProblemError):
    status = 402
    type_slug = "subscription-suspended"
    title = "This agency's subscription is suspended"


class SubscriptionCanceled(ProblemError):
    status = 402
    type_slug = "subscription-canceled"
    title = "This agency's subscription is canceled"


class PlanFeatureMissing(ProblemError):
    status = 403
    type_slug = "plan-feature-missing"
    title = "Your plan does not include this feature"


class LogoTooLarge(ProblemError):
    status = 413
    type_slug = "logo-too-large"
    title = "The logo is too large"


class LogoTypeUnsupported(ProblemError):
    status = 415
    type_slug = "logo-type-unsupported"
    title = "A logo is a PNG, JPEG or WebP image"


class LogoInvalid(ProblemError):
    status = 422
    type_slug = "logo-invalid"
    title = "The body is not the image it says it is"


class SignInLinkInvalid(NotFound):
    type_slug = "sign-in-link-invalid"
    title = "This sign-in link was altered or is not one of ours"


class SignInLinkExpired(ProblemError):
    status = 410
    type_slug = "sign-in-link-expired"
    title = "This sign-in link has expired"


class SignInLinkUsed(ProblemError):
    status = 410
    type_slug = "sign-in-link-used"
    title = "This sign-in link was already used"
