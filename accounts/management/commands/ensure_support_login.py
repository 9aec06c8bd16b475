import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User

SUPPORT_EMAIL = "support@example.com"


class Command(BaseCommand):
    help = ("Make sure a support login exists for local work and print it. The password is "
            "random, generated on first run and kept in the git-ignored .support-password.")

    def handle(self, *args, **options) -> None:
        secret_file = Path(settings.BASE_DIR) / ".support-password"
        password = secret_file.read_text().strip() if secret_file.exists() else ""
        user = User.objects.filter(email=SUPPORT_EMAIL).first()
        if user is None or not password or not user.check_password(password):
            password = password or secrets.token_urlsafe(12)
            secret_file.write_text(password + "\n")
            secret_file.chmod(0o600)
            if user is None:
                User.objects.create_superuser(SUPPORT_EMAIL, password, name="Support",
                                              company="Acme Workspaces")
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
        self.stdout.write(f"  Support login:   {SUPPORT_EMAIL} / {password}  (kept in .support-password)")
