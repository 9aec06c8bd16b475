from django.core.management.base import BaseCommand

from provisioning.reconciler import reconcile


class Command(BaseCommand):
    help = "Run one dispatcher pass: enqueue due retries and rescue stuck or lost steps."

    def handle(self, *args, **options) -> None:
        self.stdout.write(str(reconcile()))
