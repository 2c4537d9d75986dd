"""`manage.py reconcile_distribution ID [--csv FILE]`: the database against the chain, holder by holder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import NotFound
from payouts import services


class Command(BaseCommand):
    help = (
        "Compare what the database recorded for a distribution with the chain (isPaid, HolderPaid events, "
        "payment-token transfers): matched, missing on chain, missing in the database, amount differences."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("distribution_id")
        parser.add_argument("--csv", dest="csv_path", help="write every holder's row to this CSV file")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = services.distribution_reconcile(distribution_id=options["distribution_id"])
        except NotFound as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(report.summary())
        for row in report.differences:
            self.stdout.write(
                f"{row.outcome} {row.holder} database={row.database_status or 'none'}:{row.database_amount} "
                f"chain_paid={row.paid_on_chain} event={row.event_amount} transfer={row.transfer_amount} "
                f"tx={row.tx_hash or '-'}"
            )
        if options["csv_path"]:
            with Path(options["csv_path"]).open("w", newline="") as out:
                report.write_csv(out)
            self.stdout.write(f"csv written: {options['csv_path']} ({len(report.holders)} holders)")
