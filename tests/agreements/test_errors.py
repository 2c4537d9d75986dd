"""Agreement services refuse with the shared domain errors (`config.errors`), whoever calls them."""

from __future__ import annotations

import uuid

import pytest

from agreements.models import InboundBlockchainEvent
from agreements.services import agreements as agreement_services
from agreements.services import inbound as inbound_services
from agreements.services import outbound as outbound_services
from config.errors import Conflict, InvalidInput, NotFound
from tests.agreements.factories import AgreementFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (
            lambda missing: agreement_services.agreement_transition(agreement_id=missing, target="CANCELLED"),
            "agreement",
        ),
        (lambda missing: agreement_services.agreement_delete(agreement_id=missing), "agreement"),
        (lambda missing: agreement_services.payment_mark_paid(payment_id=missing), "payment"),
        (lambda missing: agreement_services.payment_cancel(payment_id=missing), "payment"),
        (lambda missing: outbound_services.webhook_delivery_resend(delivery_id=missing), "webhook delivery"),
        (lambda missing: inbound_services.blockchain_event_reprocess(event_id=missing), "blockchain event"),
    ],
)
def test_an_unknown_id_is_not_found_naming_what(call: object, what: str) -> None:
    with pytest.raises(NotFound, match=f"^{what} not found$"):
        call(uuid.uuid4())  # type: ignore[operator]


def test_a_field_that_is_not_editable_is_invalid_input_naming_it() -> None:
    # given
    agreement = AgreementFactory.create()
    # when / then
    with pytest.raises(InvalidInput, match="not editable: status") as refused:
        agreement_services.agreement_update(agreement_id=agreement.id, changes={"status": "COMPLETED"})
    assert refused.value.field == "status"


def test_only_failed_events_are_reprocessed_whoever_asks() -> None:
    # given a processed event
    event = InboundBlockchainEvent.objects.create(
        webhook_id="msg_3",
        body_sha256="2" * 64,
        type="CREATE",
        agreement_id=uuid.uuid4(),
        tx_hash="0x" + "ef" * 32,
        payload={},
        status=InboundBlockchainEvent.Status.PROCESSED,
    )
    # when / then
    with pytest.raises(Conflict, match="Only FAILED events can be reprocessed"):
        inbound_services.blockchain_event_reprocess(event_id=event.id)
    event.refresh_from_db()
    assert event.status == InboundBlockchainEvent.Status.PROCESSED
