from django.contrib import admin
from django.urls import include, path

from accounts import webhooks
from config.health import healthz_view
from config.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz_view, name="healthz"),
    # Prometheus, for operators: a bearer token (METRICS_TOKEN) or a console session.
    path("metrics", metrics_view, name="metrics"),
    # Anymail's tracking webhooks (bounces, complaints), basic-auth WEBHOOK_SECRET;
    # an unreadable body is refused with 400 (accounts.webhooks).
    path("anymail/", include((webhooks.urlpatterns(), "anymail"))),
    path("", include("support.urls")),
    path("", include("accounts.urls")),
]

handler400 = "accounts.error_views.bad_request"
handler404 = "accounts.error_views.page_not_found"
handler500 = "accounts.error_views.server_error"
