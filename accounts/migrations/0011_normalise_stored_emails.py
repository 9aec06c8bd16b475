"""Bring addresses stored before ``normalize_email`` (NFKC, lower case, IDNA domain)
to the form every lookup now uses, so the people behind them are found again.

Accounts (``User.email``) and the emails we owe or sent (``EmailDelivery.to_address``,
read by bounce webhooks and paired with the account's address). Support's tickets
have their own migration (support 0010). Addresses typed in plain ASCII without an
"xn--" label are already in this form and are not touched.

An account whose address would become one that another account holds (or one that
another account's address would also become) keeps its address: two accounts are
never merged by a migration, and the migration never fails on them. Each is logged,
addresses masked, for support to look at; their deliveries keep their address too,
so each account's emails still pair with it. A changed address ends the account's
outstanding verification and reset links, which are signed over the address (the
person can ask for a new one from the status page, as after any address change).

Reversing does nothing: the old forms named the same mailboxes.
"""
import logging
from collections import defaultdict

from django.db import IntegrityError, migrations, transaction

from accounts.logging import mask_email
# The live normaliser, not a copy: what it produces now is what lookups compare with.
from accounts.models import normalize_email

logger = logging.getLogger("accounts.migrations")

_BATCH = 500  # ids per IN (...) and per bulk update: well inside SQLite's variable limit


def _changes(model, field: str) -> list[tuple[int, str, str]]:
    """(pk, stored, normalised) for each row whose address is not yet normalised."""
    return [(pk, stored, normal) for pk, stored in model.objects.values_list("pk", field).iterator(chunk_size=2000)
            if (normal := normalize_email(stored)) != stored]


def _existing(model, field: str, addresses: list[str]) -> set[str]:
    found = set()
    for start in range(0, len(addresses), _BATCH):
        chunk = addresses[start:start + _BATCH]
        found.update(model.objects.filter(**{f"{field}__in": chunk}).values_list(field, flat=True))
    return found


def normalise_accounts(apps, schema_editor=None) -> set[str]:
    """Normalise each account's address unless another account has or would get it.
    Returns the addresses left as they were (for ``normalise_deliveries``)."""
    User = apps.get_model("accounts", "User")
    changes = _changes(User, "email")
    by_target = defaultdict(list)
    for pk, stored, normal in changes:
        by_target[normal].append((pk, stored))
    held = _existing(User, "email", list(by_target))
    kept, moved = set(), 0
    for normal, rows in by_target.items():
        if len(rows) > 1 or normal in held:
            why = "another account has it" if normal in held else f"{len(rows)} accounts would share it"
            for pk, stored in rows:
                _skipped(pk, stored, normal, why)
                kept.add(stored)
            continue
        (pk, stored), = rows
        try:
            with transaction.atomic():  # a savepoint: the unique index may still refuse (case, a race)
                moved += User.objects.filter(pk=pk, email=stored).update(email=normal)
        except IntegrityError:
            _skipped(pk, stored, normal, "the database refused it as a duplicate")
            kept.add(stored)
    if changes:
        logger.info("normalised the stored addresses of %d accounts; %d kept theirs", moved, len(kept))
    return kept


def _skipped(pk: int, stored: str, normal: str, why: str) -> None:
    logger.warning("account %s keeps its address %s, not %s: %s; support can merge or correct it by hand",
                   pk, mask_email(stored), mask_email(normal), why)


def normalise_deliveries(apps, kept: set[str]) -> None:
    """Normalise the address of each email owed or sent, except where it is the address
    of an account that kept its own (the pairing with the account must hold)."""
    EmailDelivery = apps.get_model("accounts", "EmailDelivery")
    rows = [(pk, normal) for pk, stored, normal in _changes(EmailDelivery, "to_address") if stored not in kept]
    for start in range(0, len(rows), _BATCH):
        batch = [EmailDelivery(pk=pk, to_address=normal) for pk, normal in rows[start:start + _BATCH]]
        EmailDelivery.objects.bulk_update(batch, ["to_address"])


def normalise_stored_emails(apps, schema_editor=None) -> None:
    normalise_deliveries(apps, normalise_accounts(apps, schema_editor))


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0010_customer_tally"),
    ]

    operations = [
        migrations.RunPython(normalise_stored_emails, migrations.RunPython.noop, elidable=True),
    ]
