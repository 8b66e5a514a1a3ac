"""Plumbing shared by every domain: settings, database, queue, outbox, security, logging."""
