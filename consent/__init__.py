"""Who may see and change what: SMART scopes, Consent decisions, and the query filters
that enforce them on every access path (read, search, includes, history, bundles)."""
