"""API views: validate, call one service, serialise. Errors are answered by `config.api`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.idempotency import idempotent
from config.pagination import PagePagination
from payouts import exports, selectors, services
from payouts.api.serializers import (
    AssetImportSerializer,
    AssetSerializer,
    BatchSerializer,
    DistributionCancelSerializer,
    DistributionCreateSerializer,
    DistributionSerializer,
    HolderSerializer,
    PaymentSerializer,
    WithdrawalCreateSerializer,
    WithdrawalSerializer,
)
from payouts.models import Asset, BatchPayout, Distribution, HolderPayment


class _Filters(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=Distribution.Status.choices, required=False)
    asset = serializers.UUIDField(required=False)
    page = serializers.IntegerField(required=False)
    limit = serializers.IntegerField(required=False)


def _query(request: Request, serializer_class: type[serializers.Serializer[Any]]) -> dict[str, Any]:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)


def _page(request: Request, view: APIView, queryset: Any, serializer: Callable[..., Any], **context: Any) -> Response:
    paginator = PagePagination()
    page = paginator.paginate_queryset(queryset, request, view)
    return paginator.get_paginated_response(serializer(page, many=True, context=context).data)


class AssetImportApi(APIView):
    @idempotent
    @extend_schema(request=AssetImportSerializer, responses={201: AssetSerializer})
    def post(self, request: Request) -> Response:
        body = AssetImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        asset = services.asset_import(**body.validated_data)
        return Response(AssetSerializer(asset).data, status=status.HTTP_201_CREATED)


class _AssetFilters(serializers.Serializer[Any]):
    sync_status = serializers.ChoiceField(choices=Asset.SyncStatus.choices, required=False)
    is_paused = serializers.BooleanField(required=False, allow_null=True, default=None)
    page = serializers.IntegerField(required=False)
    limit = serializers.IntegerField(required=False)


class AssetListApi(APIView):
    @extend_schema(responses={200: AssetSerializer(many=True)})
    def get(self, request: Request) -> Response:
        filters = _query(request, _AssetFilters)
        assets = selectors.asset_list(sync_status=filters.get("sync_status"), is_paused=filters.get("is_paused"))
        return _page(request, self, assets, AssetSerializer)


class AssetDetailApi(APIView):
    @extend_schema(responses={200: AssetSerializer})
    def get(self, request: Request, asset_id: str) -> Response:
        return Response(AssetSerializer(selectors.asset_get(asset_id)).data)


class _AssetAction(APIView):
    action_status: int = status.HTTP_200_OK

    def act(self, asset: Asset) -> Asset:
        raise NotImplementedError

    @idempotent
    @extend_schema(request=None, responses={200: AssetSerializer, 202: AssetSerializer})
    def post(self, request: Request, asset_id: str) -> Response:
        asset = selectors.asset_get(asset_id)
        return Response(AssetSerializer(self.act(asset)).data, status=self.action_status)


class AssetPauseApi(_AssetAction):
    def act(self, asset: Asset) -> Asset:
        return services.asset_set_paused(asset_id=asset.pk, paused=True)


class AssetUnpauseApi(_AssetAction):
    def act(self, asset: Asset) -> Asset:
        return services.asset_set_paused(asset_id=asset.pk, paused=False)


class AssetSyncApi(_AssetAction):
    action_status = status.HTTP_202_ACCEPTED

    def act(self, asset: Asset) -> Asset:
        return services.asset_request_sync(asset_id=asset.pk)


class AssetEnableSyncApi(_AssetAction):
    def act(self, asset: Asset) -> Asset:
        return services.asset_set_sync_enabled(asset_id=asset.pk, enabled=True)


class AssetDisableSyncApi(_AssetAction):
    def act(self, asset: Asset) -> Asset:
        return services.asset_set_sync_enabled(asset_id=asset.pk, enabled=False)


class AssetHoldersApi(APIView):
    @extend_schema(responses={200: HolderSerializer(many=True)})
    def get(self, request: Request, asset_id: str) -> Response:
        asset = selectors.asset_get(asset_id)
        return _page(request, self, selectors.holder_list(asset=asset), HolderSerializer, asset=asset)


class AssetDistributionsApi(APIView):
    @extend_schema(responses={200: DistributionSerializer(many=True)})
    def get(self, request: Request, asset_id: str) -> Response:
        asset = selectors.asset_get(asset_id)
        filters = _query(request, _Filters)
        distributions = selectors.distribution_list(asset_id=asset.pk, status=filters.get("status"))
        return _page(request, self, distributions, DistributionSerializer)

    @idempotent
    @extend_schema(request=DistributionCreateSerializer, responses={201: DistributionSerializer})
    def post(self, request: Request, asset_id: str) -> Response:
        asset = selectors.asset_get(asset_id)
        body = DistributionCreateSerializer(data=request.data, context={"asset": asset})
        body.is_valid(raise_exception=True)
        distribution = services.distribution_create(asset_id=asset.pk, **body.validated_data)
        return Response(DistributionSerializer(distribution).data, status=status.HTTP_201_CREATED)


class AssetWithdrawalsApi(APIView):
    @extend_schema(responses={200: WithdrawalSerializer(many=True)})
    def get(self, request: Request, asset_id: str) -> Response:
        asset = selectors.asset_get(asset_id)
        return _page(request, self, selectors.withdrawal_list(asset=asset), WithdrawalSerializer)

    @idempotent
    @extend_schema(request=WithdrawalCreateSerializer, responses={202: WithdrawalSerializer})
    def post(self, request: Request, asset_id: str) -> Response:
        """Send unreserved payment tokens from the payout contract back to `to_address` (its admin only)."""
        asset = selectors.asset_get(asset_id)
        body = WithdrawalCreateSerializer(data=request.data, context={"asset": asset})
        body.is_valid(raise_exception=True)
        withdrawal = services.funds_withdraw(asset_id=asset.pk, requested_by_id=request.user.pk, **body.validated_data)
        return Response(WithdrawalSerializer(withdrawal).data, status=status.HTTP_202_ACCEPTED)


class DistributionListApi(APIView):
    @extend_schema(responses={200: DistributionSerializer(many=True)})
    def get(self, request: Request) -> Response:
        filters = _query(request, _Filters)
        distributions = selectors.distribution_list(asset_id=filters.get("asset"), status=filters.get("status"))
        return _page(request, self, distributions, DistributionSerializer)


class DistributionDetailApi(APIView):
    @extend_schema(responses={200: DistributionSerializer})
    def get(self, request: Request, distribution_id: str) -> Response:
        return Response(DistributionSerializer(selectors.distribution_get(distribution_id)).data)


class _DistributionAction(APIView):
    action_status: int = status.HTTP_202_ACCEPTED

    def act(self, distribution: Distribution) -> Distribution:
        raise NotImplementedError

    @idempotent
    @extend_schema(request=None, responses={200: DistributionSerializer, 202: DistributionSerializer})
    def post(self, request: Request, distribution_id: str) -> Response:
        distribution = selectors.distribution_get(distribution_id)
        result = self.act(distribution)
        result = selectors.distribution_get(result.pk)
        return Response(DistributionSerializer(result).data, status=self.action_status)


class DistributionExecuteApi(_DistributionAction):
    def act(self, distribution: Distribution) -> Distribution:
        return services.distribution_start(distribution_id=distribution.pk)


class DistributionCancelApi(APIView):
    @idempotent
    @extend_schema(request=DistributionCancelSerializer, responses={200: DistributionSerializer})
    def post(self, request: Request, distribution_id: str) -> Response:
        """Cancel this SCHEDULED occurrence only (default), or with `{"scope": "series"}` its whole series."""
        distribution = selectors.distribution_get(distribution_id)
        body = DistributionCancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        scope = body.validated_data["scope"]
        result = services.distribution_cancel(distribution_id=distribution.pk, scope=scope)
        result = selectors.distribution_get(result.pk)
        return Response(DistributionSerializer(result).data, status=status.HTTP_200_OK)


class DistributionRetryApi(_DistributionAction):
    def act(self, distribution: Distribution) -> Distribution:
        return services.distribution_retry(distribution_id=distribution.pk)


class _BatchFilters(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=BatchPayout.Status.choices, required=False)
    page = serializers.IntegerField(required=False)
    limit = serializers.IntegerField(required=False)


class DistributionBatchesApi(APIView):
    @extend_schema(responses={200: BatchSerializer(many=True)})
    def get(self, request: Request, distribution_id: str) -> Response:
        distribution = selectors.distribution_get(distribution_id)
        filters = _query(request, _BatchFilters)
        return _page(
            request,
            self,
            selectors.batch_list(distribution=distribution, status=filters.get("status")),
            BatchSerializer,
        )


class _PaymentFilters(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=HolderPayment.Status.choices, required=False)
    batch = serializers.IntegerField(required=False, min_value=1)
    page = serializers.IntegerField(required=False)
    limit = serializers.IntegerField(required=False)


class CsvRenderer(BaseRenderer):
    """Lets a client ask for `text/csv`; the CSV itself is streamed by the view, errors stay JSON."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return JSONRenderer().render(data)


class DistributionPaymentsCsvApi(APIView):
    """Every payment of a distribution as CSV, streamed (`payouts.exports`): staff only, like the whole API."""

    renderer_classes = (JSONRenderer, CsvRenderer)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, distribution_id: str) -> StreamingHttpResponse:
        return exports.payments_csv_response(selectors.distribution_get(distribution_id))


class DistributionPaymentsApi(APIView):
    @extend_schema(responses={200: PaymentSerializer(many=True)})
    def get(self, request: Request, distribution_id: str) -> Response:
        distribution = selectors.distribution_get(distribution_id)
        filters = _query(request, _PaymentFilters)
        payments = selectors.payment_list(
            distribution=distribution, status=filters.get("status"), batch_number=filters.get("batch")
        )
        return _page(request, self, payments, PaymentSerializer, distribution=distribution)
