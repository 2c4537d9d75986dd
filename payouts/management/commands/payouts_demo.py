"""`manage.py payouts_demo --chain-file .run/chain.json`: the demo asset for `make run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chain.client import ChainClient
from chain.localchain import read_chain_file
from chain.signers import get_signer
from payouts.demo import DEMO_HOLDERS, demo_setup


class Command(BaseCommand):
    help = "Deploy, fund, import and sync a demo asset with a few hundred holders (local chain only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chain-file", required=True, help="chain.json written by the local chain step")
        parser.add_argument("--holders", type=int, default=DEMO_HOLDERS)

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["chain_file"])
        if not path.exists():
            raise CommandError(f"no local chain file at {path}")
        contracts = read_chain_file(path)
        client = ChainClient.from_settings()
        result = demo_setup(
            client=client, signer=get_signer(), payment_token=contracts.payment_token, holders=options["holders"]
        )
        asset = result.asset
        state = "created" if result.created else "already there"
        self.stdout.write(
            f"demo asset {state}: {asset.name} id={asset.pk} holders={asset.holders_count} "
            f"payout contract={asset.payout_contract_address} sync={asset.sync_status}"
        )
