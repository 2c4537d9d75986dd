"""URL map: admin, versioned API, webhooks, schema and docs, health and metrics."""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from agreements.api.inbound import blockchain_webhook
from config import health
from config.metrics import metrics_view
from config.views import ApiRootApi

admin.site.site_header = "Payouts and agreements operations"
admin.site.site_title = "Operations admin"

api_v1: list[URLPattern | URLResolver] = [
    path("", ApiRootApi.as_view(), name="api-root"),
    path("", include("payouts.api.urls")),
    path("", include("agreements.api.urls")),
    path("", include("chain.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    # Authenticated by its signature (see README, "Agreements and webhooks"), not by an API token.
    path("blockchain/webhook", blockchain_webhook, name="blockchain-webhook"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]
