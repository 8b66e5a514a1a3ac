"""The directory: agencies (tenants), people, memberships and roles, audit."""
