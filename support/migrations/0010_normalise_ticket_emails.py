"""Bring the addresses of tickets stored before ``normalize_email`` to the form
every lookup now uses (accounts 0011 does the accounts and their emails): a message
to /help/ from an address no account uses joins that address's open ticket by it.

At most one unresolved ticket without an account may hold an address (a unique
constraint): one that would take the address of another such ticket, or that shares
its new address with another, keeps its own, is logged with the addresses masked,
and the migration goes on. Contact messages and call-back requests keep the address
as stored: nothing looks them up by it.

Reversing does nothing: the old forms named the same mailboxes.
"""
import logging
from collections import defaultdict

from django.db import IntegrityError, migrations, transaction

from accounts.logging import mask_email
from accounts.models import normalize_email

logger = logging.getLogger("support.migrations")

RESOLVED = "resolved"


def normalise_ticket_emails(apps, schema_editor=None) -> None:
    Ticket = apps.get_model("support", "Ticket")
    changes = [(pk, stored, normal, account_id, status) for pk, stored, account_id, status
               in Ticket.objects.values_list("pk", "email", "account_id", "status").iterator(chunk_size=2000)
               if (normal := normalize_email(stored)) != stored]
    constrained = defaultdict(list)  # new address -> unresolved tickets without an account
    for pk, stored, normal, account_id, status in changes:
        if account_id is None and status != RESOLVED:
            constrained[normal].append((pk, stored))
        else:
            Ticket.objects.filter(pk=pk).update(email=normal)
    held = set(Ticket.objects.filter(account__isnull=True, email__in=list(constrained))
               .exclude(status=RESOLVED).values_list("email", flat=True))
    for normal, rows in constrained.items():
        if len(rows) > 1 or normal in held:
            for pk, stored in rows:
                _skipped(pk, stored, normal)
            continue
        (pk, stored), = rows
        try:
            with transaction.atomic():
                Ticket.objects.filter(pk=pk, email=stored).update(email=normal)
        except IntegrityError:
            _skipped(pk, stored, normal)


def _skipped(pk: int, stored: str, normal: str) -> None:
    logger.warning("ticket %s keeps its address %s, not %s: another open ticket without an account "
                   "has or would get it; support can merge them by hand", pk, mask_email(stored), mask_email(normal))


class Migration(migrations.Migration):

    dependencies = [
        ("support", "0009_incident_cause_rerun_all"),
    ]

    operations = [
        migrations.RunPython(normalise_ticket_emails, migrations.RunPython.noop, elidable=True),
    ]
