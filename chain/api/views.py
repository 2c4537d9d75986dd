"""Chain API views: validate, call one service, serialise. Errors are answered by `config.api`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chain import selectors, services
from chain.api.serializers import ChainTransactionSerializer
from config.idempotency import idempotent


class ChainTransactionDetailApi(APIView):
    @extend_schema(responses={200: ChainTransactionSerializer})
    def get(self, request: Request, transaction_id: str) -> Response:
        """One chain transaction with its signed versions (newest first)."""
        return Response(ChainTransactionSerializer(selectors.transaction_get(transaction_id)).data)


class ChainTransactionCancelApi(APIView):
    @idempotent
    @extend_schema(request=None, responses={202: ChainTransactionSerializer})
    def post(self, request: Request, transaction_id: str) -> Response:
        """Cancel a signed or broadcast transaction that will never be mined and holds up its sender's
        lane: the chain queue sends a zero-value transfer to the sender itself at the same nonce. It
        ends `CANCELLED` if that is mined (as usual if the original is mined first). 409 otherwise."""
        row = selectors.transaction_get(transaction_id)
        requested = services.transaction_cancel_request(transaction_id=str(row.pk))
        requested = selectors.transaction_get(requested.pk)
        return Response(ChainTransactionSerializer(requested).data, status=status.HTTP_202_ACCEPTED)
