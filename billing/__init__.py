"""Billing, in three parts, each its own sub-package:

- `billing.budgets`: time budgets, the agency's time against its clients' retainers
  (retainers and rates, time entries and timers, weekly timesheets, budget status and alerts).
- `billing.invoices`: the agency's invoices to its clients, drafted from approved time and
  pushed to the agency's connected Stripe account (or exported as CSV and PDF).
- `billing.subscription`: the agency's own Passerelle subscription (Stripe Checkout and portal,
  seats, Stripe's events), its connected Stripe account, and the Stripe client (`stripe_gateway`).

Dependencies go one way: `invoices → budgets` (invoice lines come from approved time entries and
the retainer's terms) and `invoices → subscription` (the Stripe client and the retry policy of
jobs that call Stripe). `budgets` and `subscription` import no other part of billing.
Callers import from the sub-package; nothing is re-exported here.
"""
