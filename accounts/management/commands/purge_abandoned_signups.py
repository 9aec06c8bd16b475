from django.core.management.base import BaseCommand

from accounts.flows.purge import abandoned_signups_purge


class Command(BaseCommand):
    help = ("Warn, then remove, accounts never verified and never used (ABANDONED_SIGNUP_DAYS, "
            "warned ABANDONED_SIGNUP_WARNING_DAYS before). Runs daily on its own; --dry-run lists "
            "who would be warned or removed and changes nothing.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        self.stdout.write(str(abandoned_signups_purge(dry_run=dry_run)))
