"""Loan agreements mirrored on chain through signed webhooks."""
