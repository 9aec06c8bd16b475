from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.home_view, name="home"),
    path("signup/", views.signup_view, name="signup"),
    path("login/", views.login_view, name="login"),
    path("login/code/", views.login_code_view, name="login_code"),
    path("logout/", views.logout_view, name="logout"),
    path("setup/", views.setup_view, name="setup"),
    path("setup/status.json", views.status_json_view, name="status_json"),
    path("setup/email/", views.setup_email_view, name="setup_email"),
    path("setup/email/confirm/<str:token>/", views.setup_email_confirm_view, name="setup_email_confirm"),
    path("setup/resend/", views.setup_resend_view, name="setup_resend"),
    path("verify/", views.verify_failed_view, name="verify_failed"),
    path("verify/done/", views.verify_done_view, name="verify_done"),
    path("verify/<str:token>/", views.verify_view, name="verify"),
    path("password-reset/", views.password_reset_view, name="password_reset"),
    path("password-reset/sent/", views.password_reset_sent_view, name="password_reset_sent"),
    path("password-reset/<str:uidb64>/<str:token>/", views.PasswordResetConfirm.as_view(),
         name="password_reset_confirm"),
]
