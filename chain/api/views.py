"""Chain API views: validate, call one service, serialise. Unknown or malformed ids are 404."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chain import selectors, services
from chain.api.serializers import ChainTransactionSerializer
from chain.lane.base import CancelRefused
from chain.lane.models import ChainTransaction
from config.api import ConflictError
from config.idempotency import idempotent


def _transaction(transaction_id: str) -> ChainTransaction:
    row = selectors.transaction_get(transaction_id)
    if row is None:
        raise exceptions.NotFound("chain transaction not found")
    return row


class ChainTransactionDetailApi(APIView):
    @extend_schema(responses={200: ChainTransactionSerializer})
    def get(self, request: Request, transaction_id: str) -> Response:
        """One chain transaction with its signed versions (newest first)."""
        return Response(ChainTransactionSerializer(_transaction(transaction_id)).data)


class ChainTransactionCancelApi(APIView):
    @idempotent
    @extend_schema(request=None, responses={202: ChainTransactionSerializer})
    def post(self, request: Request, transaction_id: str) -> Response:
        """Cancel a signed or broadcast transaction that will never be mined and holds up its sender's
        lane: the chain queue sends a zero-value transfer to the sender itself at the same nonce. It
        ends `CANCELLED` if that is mined (as usual if the original is mined first). 409 otherwise."""
        row = _transaction(transaction_id)
        try:
            requested = services.transaction_cancel_request(transaction_id=str(row.pk))
        except CancelRefused as exc:
            raise ConflictError(str(exc)) from exc
        requested = _transaction(str(requested.pk))
        return Response(ChainTransactionSerializer(requested).data, status=status.HTTP_202_ACCEPTED)
