"""Per-resource-type knowledge as data: supported types, the R4 structure table."""
