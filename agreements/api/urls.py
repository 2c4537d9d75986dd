"""Routes of the agreements API, mounted under /api/v1/ by config/urls.py."""

from __future__ import annotations

from django.urls import path

from agreements.api import views

urlpatterns = [
    path("agreements/", views.AgreementListApi.as_view(), name="agreement-list"),
    path("agreements/<str:agreement_id>/", views.AgreementDetailApi.as_view(), name="agreement-detail"),
    path(
        "agreements/<str:agreement_id>/transition/",
        views.AgreementTransitionApi.as_view(),
        name="agreement-transition",
    ),
    path(
        "agreements/<str:agreement_id>/payments/",
        views.AgreementPaymentListApi.as_view(),
        name="agreement-payment-list",
    ),
    path(
        "agreements/<str:agreement_id>/payments/<str:payment_id>/cancel/",
        views.AgreementPaymentCancelApi.as_view(),
        name="agreement-payment-cancel",
    ),
    path(
        "agreements/<str:agreement_id>/payments/<str:payment_id>/pay/",
        views.AgreementPaymentPayApi.as_view(),
        name="agreement-payment-pay",
    ),
    path(
        "agreements/<str:agreement_id>/blockchain-logs/",
        views.AgreementBlockchainLogListApi.as_view(),
        name="agreement-blockchain-log-list",
    ),
    path("webhook-deliveries/", views.WebhookDeliveryListApi.as_view(), name="webhook-delivery-list"),
    path(
        "webhook-deliveries/resend-failed/",
        views.WebhookDeliveryResendFailedApi.as_view(),
        name="webhook-delivery-resend-failed",
    ),
    path(
        "webhook-deliveries/<str:delivery_id>/",
        views.WebhookDeliveryDetailApi.as_view(),
        name="webhook-delivery-detail",
    ),
    path(
        "webhook-deliveries/<str:delivery_id>/resend/",
        views.WebhookDeliveryResendApi.as_view(),
        name="webhook-delivery-resend",
    ),
    path("blockchain-events/", views.BlockchainEventListApi.as_view(), name="blockchain-event-list"),
    path(
        "blockchain-events/<str:event_id>/reprocess/",
        views.BlockchainEventReprocessApi.as_view(),
        name="blockchain-event-reprocess",
    ),
]
