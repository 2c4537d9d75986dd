"""API views: validate with a serializer, call one service, render the result.

Errors are answered by `config.api` (unknown or malformed ids 404, refusals and illegal status
moves 409).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from agreements import selectors
from agreements.api import serializers as s
from agreements.models import Agreement, InboundBlockchainEvent
from agreements.services import agreements as agreement_services
from agreements.services import inbound as inbound_services
from agreements.services import outbound as outbound_services
from config.errors import parse_id
from config.idempotency import idempotent


def _status_filter(request: Request, choices: list[str]) -> str | None:
    query = s.StatusQuerySerializer(data=request.query_params, context={"choices": choices})
    query.is_valid(raise_exception=True)
    value: str | None = query.validated_data.get("status")
    return value


class AgreementListApi(GenericAPIView[Agreement]):
    serializer_class = s.AgreementSerializer

    @extend_schema(
        parameters=[OpenApiParameter("status", enum=Agreement.Status.values, required=False)],
        responses=s.AgreementSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.agreement_list(status=_status_filter(request, Agreement.Status.values))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(s.AgreementSerializer(page, many=True).data)

    @idempotent
    @extend_schema(request=s.AgreementInputSerializer, responses={201: s.AgreementSerializer})
    def post(self, request: Request) -> Response:
        payload = s.AgreementInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        agreement = agreement_services.agreement_create(**payload.validated_data)
        return Response(s.AgreementSerializer(agreement).data, status=status.HTTP_201_CREATED)


class AgreementDetailApi(GenericAPIView[Agreement]):
    serializer_class = s.AgreementSerializer

    def get(self, request: Request, agreement_id: str) -> Response:
        return Response(s.AgreementSerializer(selectors.agreement_get(agreement_id)).data)

    @extend_schema(request=s.AgreementInputSerializer, responses=s.AgreementSerializer)
    def patch(self, request: Request, agreement_id: str) -> Response:
        agreement = selectors.agreement_get(agreement_id)
        payload = s.AgreementInputSerializer(data=request.data, partial=True, context={"agreement": agreement})
        payload.is_valid(raise_exception=True)
        updated = agreement_services.agreement_update(agreement_id=agreement.id, changes=dict(payload.validated_data))
        return Response(s.AgreementSerializer(updated).data)

    def delete(self, request: Request, agreement_id: str) -> Response:
        agreement = selectors.agreement_get(agreement_id)
        agreement_services.agreement_delete(agreement_id=agreement.id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AgreementTransitionApi(GenericAPIView[Agreement]):
    serializer_class = s.AgreementTransitionSerializer

    @idempotent
    @extend_schema(request=s.AgreementTransitionSerializer, responses=s.AgreementSerializer)
    def post(self, request: Request, agreement_id: str) -> Response:
        agreement = selectors.agreement_get(agreement_id)
        payload = s.AgreementTransitionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        target = payload.validated_data["status"]
        moved = agreement_services.agreement_transition(agreement_id=agreement.id, target=target)
        return Response(s.AgreementSerializer(moved).data)


class AgreementPaymentListApi(GenericAPIView[Any]):
    serializer_class = s.PaymentSerializer

    @extend_schema(responses=s.PaymentSerializer(many=True))
    def get(self, request: Request, agreement_id: str) -> Response:
        agreement = selectors.agreement_get(agreement_id)
        page = self.paginate_queryset(selectors.payment_list(agreement_id=agreement.id).select_related("agreement"))
        return self.get_paginated_response(s.PaymentSerializer(page, many=True).data)

    @idempotent
    @extend_schema(request=s.PaymentInputSerializer, responses={201: s.PaymentSerializer})
    def post(self, request: Request, agreement_id: str) -> Response:
        agreement = selectors.agreement_get(agreement_id)
        payload = s.PaymentInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        amount = s._base_units(payload.validated_data["amount"], agreement.decimals, "amount")
        payment = agreement_services.payment_create(
            agreement_id=agreement.id, due_date=payload.validated_data["due_date"], amount=amount
        )
        return Response(s.PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)


class AgreementPaymentCancelApi(GenericAPIView[Any]):
    serializer_class = s.PaymentCancelSerializer

    @idempotent
    @extend_schema(request=s.PaymentCancelSerializer, responses=s.PaymentSerializer)
    def post(self, request: Request, agreement_id: str, payment_id: str) -> Response:
        agreement = selectors.agreement_get(agreement_id)
        payment = selectors.payment_get(agreement_id=agreement.id, raw_id=payment_id)
        payload = s.PaymentCancelSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        cancelled = agreement_services.payment_cancel(payment_id=payment.id, reason=payload.validated_data["reason"])
        return Response(s.PaymentSerializer(cancelled).data)


class AgreementPaymentPayApi(GenericAPIView[Any]):
    serializer_class = s.PaymentSerializer

    @idempotent
    @extend_schema(request=None, responses=s.PaymentSerializer)
    def post(self, request: Request, agreement_id: str, payment_id: str) -> Response:
        agreement = selectors.agreement_get(agreement_id)
        payment = selectors.payment_get(agreement_id=agreement.id, raw_id=payment_id)
        paid = agreement_services.payment_mark_paid(payment_id=payment.id)
        return Response(s.PaymentSerializer(paid).data)


class AgreementBlockchainLogListApi(GenericAPIView[Any]):
    serializer_class = s.BlockchainLogSerializer

    @extend_schema(responses=s.BlockchainLogSerializer(many=True))
    def get(self, request: Request, agreement_id: str) -> Response:
        agreement = selectors.agreement_get(agreement_id)
        page = self.paginate_queryset(selectors.blockchain_log_list(agreement_id=agreement.id))
        return self.get_paginated_response(s.BlockchainLogSerializer(page, many=True).data)


class WebhookDeliveryListApi(GenericAPIView[Any]):
    serializer_class = s.DeliverySerializer

    @extend_schema(parameters=[s.DeliveryListQuerySerializer], responses=s.DeliverySerializer(many=True))
    def get(self, request: Request) -> Response:
        query = s.DeliveryListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        queryset = selectors.delivery_list(
            status=query.validated_data.get("status"), agreement_id=query.validated_data.get("agreement")
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(s.DeliverySerializer(page, many=True).data)


class WebhookDeliveryDetailApi(GenericAPIView[Any]):
    serializer_class = s.DeliverySerializer

    def get(self, request: Request, delivery_id: str) -> Response:
        return Response(s.DeliverySerializer(selectors.delivery_get(delivery_id)).data)


class WebhookDeliveryResendApi(GenericAPIView[Any]):
    serializer_class = s.DeliverySerializer

    @idempotent
    @extend_schema(request=None, responses={202: s.DeliverySerializer})
    def post(self, request: Request, delivery_id: str) -> Response:
        delivery = selectors.delivery_get(delivery_id)
        outbound_services.webhook_delivery_resend(delivery_id=delivery.id)
        return Response(s.DeliverySerializer(selectors.delivery_get(delivery_id)).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryResendFailedApi(GenericAPIView[Any]):
    serializer_class = s.ResendFailedSerializer

    @idempotent
    @extend_schema(request=s.ResendFailedSerializer, responses={202: dict})
    def post(self, request: Request) -> Response:
        payload = s.ResendFailedSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        ids = outbound_services.webhook_deliveries_resend_failed(since=payload.validated_data["since"])
        return Response({"resent": len(ids), "ids": [str(i) for i in ids]}, status=status.HTTP_202_ACCEPTED)


class BlockchainEventListApi(GenericAPIView[Any]):
    serializer_class = s.InboundEventSerializer

    @extend_schema(
        parameters=[OpenApiParameter("status", enum=InboundBlockchainEvent.Status.values, required=False)],
        responses=s.InboundEventSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.inbound_event_list(status=_status_filter(request, InboundBlockchainEvent.Status.values))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(s.InboundEventSerializer(page, many=True).data)


class BlockchainEventReprocessApi(GenericAPIView[Any]):
    serializer_class = s.InboundEventSerializer

    @idempotent
    @extend_schema(request=None, responses={202: s.InboundEventSerializer})
    def post(self, request: Request, event_id: str) -> Response:
        event = inbound_services.blockchain_event_reprocess(event_id=parse_id(event_id, what="blockchain event"))
        return Response(s.InboundEventSerializer(event).data, status=status.HTTP_202_ACCEPTED)
