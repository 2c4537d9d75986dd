"""Agreement services: business logic, one transaction each (see the modules in this package).

- `agreements`: agreement and payment lifecycle (each change writes its outbox row).
- `outbound`: signed deliveries to the blockchain service, one try and its record, resend.
- `inbound`: the blockchain service's webhooks: verify, validate, store, process.

Both webhook directions keep their books (enqueue after commit, retries with backoff, the sweeper,
the final alert) through `agreements.outbox`. Discord alerts live in `config.alerts` (shared with
payouts).
"""
