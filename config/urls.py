from django.contrib import admin
from django.urls import include, path

from config.health import healthz_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz_view, name="healthz"),
    # Anymail's tracking webhooks (bounces, complaints), basic-auth WEBHOOK_SECRET.
    path("anymail/", include("anymail.urls")),
    path("", include("support.urls")),
    path("", include("accounts.urls")),
]

handler404 = "accounts.error_views.page_not_found"
handler500 = "accounts.error_views.server_error"
