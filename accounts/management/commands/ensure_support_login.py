import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_static.lib import add_static_token

from accounts.models import User

SUPPORT_EMAIL = "support@example.com"
SUPPORT_GROUP = "Support"  # created by support/migrations/0002_support_group.py


class Command(BaseCommand):
    help = ("Make sure a support login exists for local work and print it: a staff user in the "
            "Support group (exactly the support person's permissions, not a superuser). The password "
            "is random, generated on first run and kept in the git-ignored .support-password. The "
            "console also asks for a second factor: each run prints a fresh one-time backup code "
            "(django-otp's addstatictoken), after which the console offers to set up an authenticator app.")

    def handle(self, *args, **options) -> None:
        group = Group.objects.filter(name=SUPPORT_GROUP).first()
        if group is None:
            raise CommandError("The Support group is missing: run `manage.py migrate` first.")
        secret_file = Path(settings.BASE_DIR) / ".support-password"
        password = secret_file.read_text().strip() if secret_file.exists() else ""
        user = User.objects.filter(email=SUPPORT_EMAIL).first()
        if user is None or not password or not user.check_password(password):
            password = password or secrets.token_urlsafe(12)
            secret_file.write_text(password + "\n")
            secret_file.chmod(0o600)
            if user is None:
                user = User.objects.create_user(SUPPORT_EMAIL, password, name="Support",
                                                company="Acme Workspaces", is_staff=True)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
        if not user.is_staff or user.is_superuser:
            # Older checkouts made a superuser; the console should be tried as support uses it.
            User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=False)
        user.groups.add(group)
        self.stdout.write(f"  Support login:   {SUPPORT_EMAIL} / {password}  (kept in .support-password; "
                          f"staff in the {SUPPORT_GROUP} group)")
        # The console needs a second factor too; a backup code gets a newcomer in with
        # one command (each works once; the next `make run` prints another).
        code = add_static_token(SUPPORT_EMAIL).token
        self.stdout.write(f"  Second factor:   backup code {code}  (works once; set up an authenticator app at "
                          f"/admin/second-factor/ once you are in)")
