"""REST API of the payouts app (under /api/v1/)."""
