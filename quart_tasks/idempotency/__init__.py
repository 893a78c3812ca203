"""`Idempotency-Key`: a retried create gets the first answer again instead of a duplicate."""
