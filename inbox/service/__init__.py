"""The inbox's business rules: ingest (what the platforms send), items (what agents do),
settings (saved replies, rules, response policies), actions (replies and moderation) and
figures."""
