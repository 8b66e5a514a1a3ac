"""Business rules of time budgets. Functions take a session and the acting principal; they
never commit: the request (or job) that called them owns the transaction."""

from billing.budgets.service.budgets import BUDGET_SQL, client_budget, portal_budget, team_budgets
from billing.budgets.service.entries import (
    EntryFilters,
    Worker,
    close_timer,
    create_entry,
    current_timer,
    delete_entry,
    discard_timer,
    get_entry,
    list_entries,
    start_timer,
    stop_timer,
    update_entry,
)
from billing.budgets.service.retainers import (
    create_rate,
    create_retainer,
    delete_rate,
    get_retainer,
    list_rates,
    list_retainers,
    update_rate,
    update_retainer,
)
from billing.budgets.service.timesheets import (
    approve_timesheet,
    get_timesheet,
    return_timesheet,
    submit_timesheet,
)

__all__ = [
    "BUDGET_SQL",
    "EntryFilters",
    "Worker",
    "approve_timesheet",
    "client_budget",
    "close_timer",
    "create_entry",
    "create_rate",
    "create_retainer",
    "current_timer",
    "delete_entry",
    "delete_rate",
    "discard_timer",
    "get_entry",
    "get_retainer",
    "get_timesheet",
    "list_entries",
    "list_rates",
    "list_retainers",
    "portal_budget",
    "return_timesheet",
    "start_timer",
    "stop_timer",
    "submit_timesheet",
    "team_budgets",
    "update_entry",
    "update_rate",
    "update_retainer",
]
