"""Client invoices: a draft per client and closed month from approved time (`invoicing` is the
arithmetic), edited by staff, finalized and voided, with credit notes; pushed to the agency's
connected Stripe account (`push`) or exported as CSV and PDF (`exports`). Reads time budgets
(`billing.budgets`) and uses the Stripe client of `billing.subscription`."""
