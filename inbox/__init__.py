"""The community inbox: items, conversations, replies, moderation, rules, response policies
and crisis warnings."""
