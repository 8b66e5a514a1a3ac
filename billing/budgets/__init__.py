"""Time budgets: retainers and their month-by-month terms, hourly rates, time entries and timers,
weekly timesheets, and the budget status (used, projected, alerts at thresholds) of a client's
month. Imports no other part of billing."""
