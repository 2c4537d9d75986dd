"""The transaction submission lane: ordered, pipelined, crash-safe signing and broadcasting.

`models` (ChainTransaction, its signed versions, the nonce row per sender), `services`
(enqueue, submit, confirm, replace, sweep), `tasks` (Celery wrappers), `admin`. The public names
are re-exported by `chain.models`, `chain.services` and `chain.tasks`.
"""
