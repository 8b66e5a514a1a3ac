"""The clients' data rights (Québec's Law 25, the GDPR): an agency's or one client's export,
a person's erasure, the end of an agency's contract, and the retention of raw records.

It sits above every domain because it reads and removes what each of them holds; the domains
know nothing of it."""
