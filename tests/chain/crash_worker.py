"""A real Celery worker process that dies (`os._exit`) at one seam of the submission lane.

Run by the crash tests as `python -m tests.chain.crash_worker SEAM` (see `tests.fixtures.crashing`):
  before_broadcast        the signed transaction is stored, the process dies before sending it
  after_broadcast         the node accepted it (and mines it), the process dies before recording that
  before_receipt_recorded a receipt was fetched, the process dies before recording it
"""

from __future__ import annotations

import sys
from typing import Any

from tests.fixtures.crashing import die, serve, setup_django


def main(seam: str) -> None:
    setup_django()
    from chain.client import ChainClient, Receipt

    send = ChainClient.send_raw_transaction
    get_receipt = ChainClient.get_receipt

    def die_before_send(self: ChainClient, raw: bytes) -> str:
        die()

    def die_after_send(self: ChainClient, raw: bytes) -> str:
        send(self, raw)
        die()

    def die_on_receipt(self: ChainClient, tx_hash: str) -> Receipt | None:
        receipt = get_receipt(self, tx_hash)
        if receipt is not None:
            die()
        return receipt

    patches: dict[str, tuple[str, Any]] = {
        "before_broadcast": ("send_raw_transaction", die_before_send),
        "after_broadcast": ("send_raw_transaction", die_after_send),
        "before_receipt_recorded": ("get_receipt", die_on_receipt),
    }
    name, replacement = patches[seam]
    setattr(ChainClient, name, replacement)
    serve("chain,default")


if __name__ == "__main__":
    main(sys.argv[1])
