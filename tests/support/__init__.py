"""Real servers and helpers the tests talk to (SMTP, and later Stripe, platforms, OIDC)."""
