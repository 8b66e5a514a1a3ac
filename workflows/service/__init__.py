"""Business rules of content and approvals. Functions take a session and the acting
principal (or a link token); they never commit: the request or job owns the transaction."""

from workflows.service.approvals import (
    LINK_AUDIENCE,
    SignedLink,
    add_comment,
    decide,
    decide_by_link,
    inbox,
    link_token,
    list_comments,
    list_decisions,
    read_link,
    view_link,
)
from workflows.service.content import (
    calendar,
    check_content,
    create_content,
    diff_revisions,
    get_content,
    history,
    list_brand_content,
    list_revisions,
    schedule_content,
    submit_content,
    unschedule_content,
    update_content,
)
from workflows.service.templates import (
    create_template,
    get_template,
    list_templates,
    update_template,
)
from workflows.service.timeouts import run_due_steps

__all__ = [
    "LINK_AUDIENCE",
    "SignedLink",
    "add_comment",
    "calendar",
    "check_content",
    "create_content",
    "create_template",
    "decide",
    "decide_by_link",
    "diff_revisions",
    "get_content",
    "get_template",
    "history",
    "inbox",
    "link_token",
    "list_brand_content",
    "list_comments",
    "list_decisions",
    "list_revisions",
    "list_templates",
    "read_link",
    "run_due_steps",
    "schedule_content",
    "submit_content",
    "unschedule_content",
    "update_content",
    "update_template",
    "view_link",
]
