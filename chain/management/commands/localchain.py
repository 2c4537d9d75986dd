"""`manage.py localchain`: run anvil with the reference contracts deployed, until Ctrl-C."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chain.localchain import ANVIL_DEV_KEYS, chain_file, ensure_local_chain


class Command(BaseCommand):
    help = "Start a local anvil chain, deploy and fund the reference contracts, print the settings to use."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--run-dir", default=".run", help="Where the chain state and chain.json are kept.")
        parser.add_argument("--port", type=int, default=8545)
        parser.add_argument("--block-time", type=float, default=None, help="Seconds per block (default: automine).")

    def handle(self, *args: Any, **options: Any) -> None:
        run_dir = Path(options["run_dir"])
        service, contracts = ensure_local_chain(run_dir, port=options["port"], block_time=options["block_time"])
        try:
            self.stdout.write(f"CHAIN_RPC_URL={service.url}")
            self.stdout.write(f"CHAIN_SIGNER_PRIVATE_KEY={ANVIL_DEV_KEYS[0]}  # anvil's public dev key: local only")
            if options["block_time"] is None:
                # automine adds no block on top of the last transaction: results are final at the receipt
                self.stdout.write("CHAIN_CONFIRMATIONS=0  # automine: no block comes on top of the last one")
            self.stdout.write(f"payment token  {contracts.payment_token}")
            self.stdout.write(f"equity token   {contracts.equity_token}  payout contract {contracts.equity_payout}")
            self.stdout.write(f"bond token     {contracts.bond_token}  payout contract {contracts.bond_payout}")
            self.stdout.write(f"addresses in   {chain_file(run_dir)}; Ctrl-C stops the chain")
            while service.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            service.stop()
