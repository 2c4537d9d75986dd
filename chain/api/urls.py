"""Chain routes under /api/v1/. Ids are taken as strings and parsed in the view (bad id: 404)."""

from __future__ import annotations

from django.urls import path

from chain.api import views

urlpatterns = [
    path(
        "chain/transactions/<str:transaction_id>",
        views.ChainTransactionDetailApi.as_view(),
        name="chain-transaction-detail",
    ),
    path(
        "chain/transactions/<str:transaction_id>/cancel",
        views.ChainTransactionCancelApi.as_view(),
        name="chain-transaction-cancel",
    ),
]
