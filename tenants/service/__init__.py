"""Business rules of the directory. Functions take a session and the acting principal;
they never commit: the request (or job) that called them owns the transaction."""

from tenants.service.auth import (
    IssuedTokens,
    authenticate,
    find_user_by_email,
    load_principal,
    logout,
    me,
    refresh_tokens,
    revoke_session,
    signup,
    start_session,
)
from tenants.service.common import authorize, check_version, record_audit
from tenants.service.members import (
    INVITATION_AUDIENCE,
    accept_invitation,
    get_member,
    invitation_token,
    invite,
    list_members,
    update_member,
)

__all__ = [
    "INVITATION_AUDIENCE",
    "IssuedTokens",
    "accept_invitation",
    "authenticate",
    "authorize",
    "check_version",
    "find_user_by_email",
    "get_member",
    "invitation_token",
    "invite",
    "list_members",
    "load_principal",
    "logout",
    "me",
    "record_audit",
    "refresh_tokens",
    "revoke_session",
    "signup",
    "start_session",
    "update_member",
]
