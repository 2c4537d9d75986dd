"""Payouts routes under /api/v1/. Ids are taken as strings and parsed in the view (bad id: 404)."""

from __future__ import annotations

from django.urls import path

from payouts.api import views

urlpatterns = [
    path("assets/import", views.AssetImportApi.as_view(), name="asset-import"),
    path("assets", views.AssetListApi.as_view(), name="asset-list"),
    path("assets/<str:asset_id>", views.AssetDetailApi.as_view(), name="asset-detail"),
    path("assets/<str:asset_id>/pause", views.AssetPauseApi.as_view(), name="asset-pause"),
    path("assets/<str:asset_id>/unpause", views.AssetUnpauseApi.as_view(), name="asset-unpause"),
    path("assets/<str:asset_id>/sync", views.AssetSyncApi.as_view(), name="asset-sync"),
    path("assets/<str:asset_id>/enable-sync", views.AssetEnableSyncApi.as_view(), name="asset-enable-sync"),
    path("assets/<str:asset_id>/disable-sync", views.AssetDisableSyncApi.as_view(), name="asset-disable-sync"),
    path("assets/<str:asset_id>/holders", views.AssetHoldersApi.as_view(), name="asset-holders"),
    path("assets/<str:asset_id>/distributions", views.AssetDistributionsApi.as_view(), name="asset-distributions"),
    path("assets/<str:asset_id>/withdrawals", views.AssetWithdrawalsApi.as_view(), name="asset-withdrawals"),
    path("distributions", views.DistributionListApi.as_view(), name="distribution-list"),
    path("distributions/<str:distribution_id>", views.DistributionDetailApi.as_view(), name="distribution-detail"),
    path(
        "distributions/<str:distribution_id>/execute",
        views.DistributionExecuteApi.as_view(),
        name="distribution-execute",
    ),
    path(
        "distributions/<str:distribution_id>/cancel", views.DistributionCancelApi.as_view(), name="distribution-cancel"
    ),
    path("distributions/<str:distribution_id>/retry", views.DistributionRetryApi.as_view(), name="distribution-retry"),
    path(
        "distributions/<str:distribution_id>/batches",
        views.DistributionBatchesApi.as_view(),
        name="distribution-batches",
    ),
    path(
        "distributions/<str:distribution_id>/payments.csv",
        views.DistributionPaymentsCsvApi.as_view(),
        name="distribution-payments-csv",
    ),
    path(
        "distributions/<str:distribution_id>/payments",
        views.DistributionPaymentsApi.as_view(),
        name="distribution-payments",
    ),
]
