"""Errors of social accounts, statistics and reports, each with its problem type."""

from infra.errors import Conflict, NotFound, ProblemError, ServiceUnavailable


class SocialAccountNotFound(NotFound):
    type_slug = "social-account-not-found"
    title = "No such social account"


class PlatformNotConfigured(ServiceUnavailable):
    type_slug = "platform-not-configured"
    title = "This platform has no OAuth app configured"


class InvalidOAuthState(ProblemError):
    status = 400
    type_slug = "invalid-oauth-state"
    title = "The authorization response does not match a connection we started"


class OAuthDenied(ProblemError):
    status = 400
    type_slug = "oauth-denied"
    title = "The platform did not authorize the connection"


class OAuthExchangeFailed(ProblemError):
    status = 400
    type_slug = "oauth-exchange-failed"
    title = "The platform refused the authorization code"


class AccountOwnedElsewhere(Conflict):
    type_slug = "social-account-taken"
    title = "This account is already connected to another brand of your agency"


class InvalidRange(ProblemError):
    status = 422
    type_slug = "invalid-range"
    title = "The date range is not valid"


class PlatformUnreachable(ProblemError):
    status = 502
    type_slug = "platform-unreachable"
    title = "The platform could not be reached; try again"


class ReconnectNeeded(Conflict):
    type_slug = "reconnect-needed"
    title = "The account must be connected again"


class AccountNotSyncable(Conflict):
    type_slug = "account-not-syncable"
    title = "This account cannot be synced in its current state"
