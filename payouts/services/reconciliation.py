"""Reconciliation: does the database say what the chain says about a distribution, holder by holder?

For one distribution it reads, outside any database transaction:
- the chain: the payout contract's `HolderPaid` events for the distribution's chain id (bounded
  pages of blocks from the snapshot block), the payment token's `Transfer`s from the payout contract
  in those same transactions, and `isPaid(distributionId, holder)` for every holder either side names;
- the database: every `HolderPayment` of the distribution (status, amount, tx hash).

Each holder ends in one outcome: `matched` (both say paid, same amount everywhere, or both say not
paid), `missing_on_chain` (the database says paid, the chain does not), `missing_in_database` (the
chain paid, the database does not say so), `amount_differs` (both paid, amounts differ). Nothing is
written: a difference is for an operator to look into.
"""

from __future__ import annotations

import csv
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

from django.utils import timezone

from chain.abi import event_topic
from chain.client import ChainClient
from config.alerts import AlertField, send_alert
from config.errors import NotFound, parse_id
from payouts import gateway
from payouts.models import Distribution, HolderPayment

logger = logging.getLogger(__name__)

BLOCK_PAGE = 5_000  # blocks per eth_getLogs
OUTCOMES = ("matched", "missing_on_chain", "missing_in_database", "amount_differs")


@dataclass(frozen=True)
class HolderReconciliation:
    holder: str
    outcome: str  # one of OUTCOMES
    database_status: str  # a HolderPayment status, or "" when the database has no row
    database_amount: int | None
    paid_on_chain: bool  # isPaid
    event_amount: int | None  # HolderPaid amount
    transfer_amount: int | None  # payment-token Transfer to the holder in those transactions
    tx_hash: str


@dataclass(frozen=True)
class ReconciliationReport:
    distribution_id: uuid.UUID
    chain_distribution_id: str
    checked_at: datetime
    holders: list[HolderReconciliation] = field(hash=False)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for row in self.holders:
            counts[row.outcome] += 1
        return counts

    @property
    def differences(self) -> list[HolderReconciliation]:
        return [row for row in self.holders if row.outcome != "matched"]

    def summary(self) -> str:
        counts = self.counts()
        return f"distribution {self.distribution_id}: " + ", ".join(f"{k}={v}" for k, v in counts.items())

    def write_csv(self, out: TextIO) -> None:
        writer = csv.writer(out)
        writer.writerow(
            [
                "holder",
                "outcome",
                "database_status",
                "database_amount",
                "paid_on_chain",
                "event_amount",
                "transfer_amount",
                "tx_hash",
            ]
        )
        for row in self.holders:
            writer.writerow(
                [
                    row.holder,
                    row.outcome,
                    row.database_status,
                    "" if row.database_amount is None else row.database_amount,
                    "true" if row.paid_on_chain else "false",
                    "" if row.event_amount is None else row.event_amount,
                    "" if row.transfer_amount is None else row.transfer_amount,
                    row.tx_hash,
                ]
            )


def _logs_by_page(
    client: ChainClient, *, address: str, topics: list[object], from_block: int, to_block: int
) -> Iterable[dict[str, object]]:
    start = from_block
    while start <= to_block:
        end = min(start + BLOCK_PAGE - 1, to_block)
        yield from client.get_logs(address=address, from_block=start, to_block=end, topics=topics)
        start = end + 1


def _padded_address(address: str) -> str:
    return "0x" + "00" * 12 + address.lower().removeprefix("0x")


def _outcome(payment: HolderPayment | None, paid: bool, event_amount: int | None, transfer: int | None) -> str:
    db_paid = payment is not None and payment.status == HolderPayment.Status.SUCCESS
    chain_paid = paid or event_amount is not None
    if db_paid and not chain_paid:
        return "missing_on_chain"
    if chain_paid and not db_paid:
        return "missing_in_database"
    if not db_paid:
        return "matched"  # neither side paid this holder (a failed payment both agree on)
    assert payment is not None  # noqa: S101 - db_paid implies a row
    amounts = {int(payment.amount), event_amount, *([transfer] if transfer is not None else [])}
    return "matched" if amounts == {int(payment.amount)} else "amount_differs"


def distribution_reconcile(
    *, distribution_id: str | uuid.UUID, client: ChainClient | None = None
) -> ReconciliationReport:
    """Compare, holder by holder, the database's record of a distribution with the chain's."""
    distribution = (
        Distribution.objects.select_related("asset").filter(pk=parse_id(distribution_id, what="distribution")).first()
    )
    if distribution is None:
        raise NotFound("distribution not found")
    client = client or gateway.client()
    asset = distribution.asset
    contract = gateway.checksum(asset.payout_contract_address)
    chain_id = gateway.to_bytes32(distribution.chain_distribution_id)
    head = client.block_number()
    start = distribution.snapshot_block or 0

    events: dict[str, tuple[int, str]] = {}  # holder -> (amount, tx hash)
    paid_logs = _logs_by_page(
        client,
        address=contract,
        topics=[event_topic("HolderPaid"), "0x" + chain_id.hex()],
        from_block=start,
        to_block=head,
    )
    for event in client.decode_logs(paid_logs):
        if event.event_name != "HolderPaid":
            continue
        holder = gateway.normalize(event.args["holder"])
        amount, _ = events.get(holder, (0, ""))
        events[holder] = (amount + int(event.args["amount"]), event.tx_hash)

    transfers: dict[str, int] = defaultdict(int)
    paying_txs = {tx for _, tx in events.values()}
    if paying_txs:
        transfer_logs = _logs_by_page(
            client,
            address=gateway.checksum(asset.payment_token_address),
            topics=[event_topic("Transfer"), _padded_address(contract)],
            from_block=start,
            to_block=head,
        )
        for event in client.decode_logs(transfer_logs):
            if event.event_name == "Transfer" and event.tx_hash in paying_txs:
                transfers[gateway.normalize(event.args["to"])] += int(event.args["value"])

    payments = {p.holder_address: p for p in HolderPayment.objects.filter(distribution=distribution).iterator()}
    rows = []
    for holder in sorted(set(payments) | set(events)):
        payment = payments.get(holder)
        paid = client.is_paid(contract, chain_id, holder)
        event_amount, event_tx = events.get(holder, (None, ""))
        transfer = transfers.get(holder) if holder in events else None
        rows.append(
            HolderReconciliation(
                holder=holder,
                outcome=_outcome(payment, paid, event_amount, transfer),
                database_status=payment.status if payment else "",
                database_amount=int(payment.amount) if payment else None,
                paid_on_chain=paid,
                event_amount=event_amount,
                transfer_amount=transfer,
                tx_hash=event_tx or (payment.tx_hash if payment else ""),
            )
        )
    report = ReconciliationReport(
        distribution_id=distribution.pk,
        chain_distribution_id=distribution.chain_distribution_id,
        checked_at=timezone.now(),
        holders=rows,
    )
    logger.info("distribution reconciled distribution_id=%s %s", distribution.pk, report.summary())
    return report


def distributions_reconcile_recent(*, now: datetime | None = None, within: timedelta = timedelta(days=1)) -> int:
    """Reconcile every distribution that finished within `within`; one alert per distribution that
    differs. Returns how many differed."""
    now = now or timezone.now()
    recent = Distribution.objects.filter(
        status__in=[Distribution.Status.COMPLETED, Distribution.Status.FAILED],
        finished_at__gt=now - within,
        finished_at__lte=now,
    ).order_by("finished_at")
    differing = 0
    for distribution_id in recent.values_list("pk", flat=True):
        try:
            report = distribution_reconcile(distribution_id=distribution_id)
        except Exception:  # one distribution the chain cannot answer for must not stop the others
            logger.exception("distribution reconciliation failed distribution_id=%s", distribution_id)
            continue
        if not report.differences:
            continue
        differing += 1
        counts = report.counts()
        shown = "\n".join(
            f"{row.holder}: {row.outcome} (database {row.database_status or 'none'} {row.database_amount}, "
            f"chain paid={row.paid_on_chain} event {row.event_amount} transfer {row.transfer_amount})"
            for row in report.differences[:10]
        )
        send_alert(
            cause=f"payout-reconciliation:{distribution_id}",
            title="Distribution differs from the chain",
            description=(
                f"Distribution {distribution_id}: the database and the chain disagree on "
                f"{len(report.differences)} holder(s). Run `manage.py reconcile_distribution {distribution_id} "
                f"--csv FILE` for the full report.\n{shown}"
            ),
            fields=[AlertField(name=k, value=str(v)) for k, v in counts.items()],
        )
    return differing
