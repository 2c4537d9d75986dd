"""Agreement services: business logic, one transaction each (see the modules in this package).

- `agreements`: agreement and payment lifecycle (each change writes its outbox row).
- `outbound`: signed deliveries to the blockchain service, retries, resend, sweeper.
- `inbound`: the blockchain service's webhooks: verify, validate, store, process.

Discord alerts live in `config.alerts` (shared with payouts).
"""
