"""REST API of the chain app (under /api/v1/chain/): follow a chain transaction, cancel a stuck one."""
