from django.urls import path

from support import views

app_name = "support"

urlpatterns = [
    path("help/", views.help_view, name="help"),
    path("help/call/", views.callback_view, name="callback"),
]
