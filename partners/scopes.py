"""What a partner token may do: the scopes, and the one table saying which scope each
operation needs.

An operation missing from `OPERATION_SCOPES` is closed to partner tokens (logins, members,
timers, the agency's own Passerelle billing, minting partner apps). The table is keyed by
operation id, the name generated clients use; a test walks every route against it.
"""

from __future__ import annotations

from enum import StrEnum


class ApiScope(StrEnum):
    clients_read = "clients:read"
    clients_write = "clients:write"
    brands_read = "brands:read"
    brands_write = "brands:write"
    content_read = "content:read"
    content_write = "content:write"
    approvals_decide = "approvals:decide"
    time_read = "time:read"
    time_write = "time:write"
    stats_read = "stats:read"
    billing_read = "billing:read"
    webhooks_manage = "webhooks:manage"
    inbox_read = "inbox:read"
    inbox_write = "inbox:write"


ALL_SCOPES = frozenset(s.value for s in ApiScope)

S = ApiScope
OPERATION_SCOPES: dict[str, ApiScope] = {
    # clients and their retainer budgets
    "list_clients": S.clients_read,
    "get_client": S.clients_read,
    "get_client_budget": S.clients_read,
    "list_budgets": S.clients_read,
    "create_client": S.clients_write,
    "update_client": S.clients_write,
    # brands
    "list_brands": S.brands_read,
    "get_brand": S.brands_read,
    "create_brand": S.brands_write,
    "update_brand": S.brands_write,
    # content and its review
    "list_brand_content": S.content_read,
    "get_content": S.content_read,
    "list_revisions": S.content_read,
    "diff_revisions": S.content_read,
    "check_content": S.content_read,
    "list_decisions": S.content_read,
    "list_comments": S.content_read,
    "content_history": S.content_read,
    "calendar": S.content_read,
    "list_workflow_templates": S.content_read,
    "get_workflow_template": S.content_read,
    "create_content": S.content_write,
    "update_content": S.content_write,
    "submit_content": S.content_write,
    "schedule_content": S.content_write,
    "unschedule_content": S.content_write,
    "add_comment": S.content_write,
    # publishing
    "list_content_publications": S.content_read,
    "list_publications": S.content_read,
    "retry_publication": S.content_write,
    # the community inbox
    "list_inbox": S.inbox_read,
    "get_inbox_item": S.inbox_read,
    "list_inbox_crises": S.inbox_read,
    "reply_to_item": S.inbox_write,
    "approve_reply": S.inbox_write,
    "assign_item": S.inbox_write,
    "set_item_status": S.inbox_write,
    "hide_item": S.inbox_write,
    "delete_item": S.inbox_write,
    "label_item": S.inbox_write,
    "publish_now": S.content_write,
    "list_account_posts": S.stats_read,
    "decide": S.approvals_decide,
    # time
    "list_time_entries": S.time_read,
    "get_time_entry": S.time_read,
    "get_timesheet": S.time_read,
    "create_time_entry": S.time_write,
    "update_time_entry": S.time_write,
    "delete_time_entry": S.time_write,
    # audience statistics
    "list_social_accounts": S.stats_read,
    "get_social_account": S.stats_read,
    "get_brand_stats": S.stats_read,
    "get_account_stats": S.stats_read,
    "get_brand_anomalies": S.stats_read,
    "get_client_report": S.stats_read,
    "get_client_report_pdf": S.stats_read,
    # the inbox's response figures (the agency's team view)
    "get_inbox_stats": S.inbox_read,
    # client billing
    "list_invoices": S.billing_read,
    "get_invoice": S.billing_read,
    "export_invoice_csv": S.billing_read,
    "export_invoice_pdf": S.billing_read,
    "list_retainers": S.billing_read,
    "get_retainer": S.billing_read,
    "list_rates": S.billing_read,
    # the inbox's settings (saved replies, rules, response policies); rendering sends nothing
    "list_saved_replies": S.inbox_read,
    "get_saved_reply": S.inbox_read,
    "render_saved_reply": S.inbox_read,
    "list_inbox_rules": S.inbox_read,
    "get_inbox_rule": S.inbox_read,
    "get_response_policy": S.inbox_read,
    "create_saved_reply": S.inbox_write,
    "update_saved_reply": S.inbox_write,
    "delete_saved_reply": S.inbox_write,
    "create_inbox_rule": S.inbox_write,
    "update_inbox_rule": S.inbox_write,
    "delete_inbox_rule": S.inbox_write,
    "put_response_policy": S.inbox_write,
    "delete_response_policy": S.inbox_write,
    # outbound webhooks
    "list_webhook_endpoints": S.webhooks_manage,
    "create_webhook_endpoint": S.webhooks_manage,
    "get_webhook_endpoint": S.webhooks_manage,
    "update_webhook_endpoint": S.webhooks_manage,
    "delete_webhook_endpoint": S.webhooks_manage,
    "rotate_webhook_endpoint_secret": S.webhooks_manage,
    "list_webhook_deliveries": S.webhooks_manage,
    "get_webhook_delivery": S.webhooks_manage,
    "replay_webhook_delivery": S.webhooks_manage,
}
del S


def parse_scopes(raw: str | None) -> list[str]:
    """RFC 6749 §3.3: space-delimited, order-free."""
    return sorted({s for s in (raw or "").split(" ") if s})
