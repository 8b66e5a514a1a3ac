"""Time budgets: retainers, rates, time entries, timers, timesheets and budget status."""
