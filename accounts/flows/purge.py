"""Abandoned signups: accounts never verified and never used are removed after
ABANDONED_SIGNUP_DAYS (30), so a mistyped or squatted address goes back to its real
owner. The address is warned ABANDONED_SIGNUP_WARNING_DAYS (7) before; a removal
never happens sooner than that after the warning, even when the warning went out
late. Run daily by django-q2 (``ensure_schedule``) and by ``manage.py
purge_abandoned_signups``.

"Used" means a login after the one signup itself makes: the person who comes back
keeps their account, verified or not. Every removal is logged (address masked) and
recorded as a timeline event with no account, which outlives the account's own rows.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import formats, timezone

from accounts.emails import email_queue
from accounts.logging import mask_email
from accounts.models import EmailKind, User
from accounts.selectors import abandon_warning_sent, abandoned_signups
from provisioning.services import event_record

logger = logging.getLogger(__name__)

SCHEDULE_NAME = "purge_abandoned_signups"


@dataclass
class PurgeReport:
    warned: list[str] = field(default_factory=list)  # masked addresses
    removed: list[str] = field(default_factory=list)
    dry_run: bool = False

    def __str__(self) -> str:
        verb = ("would warn", "would remove") if self.dry_run else ("warned", "removed")
        return (f"{verb[0]} {len(self.warned)}: {', '.join(self.warned) or '-'}; "
                f"{verb[1]} {len(self.removed)}: {', '.join(self.removed) or '-'}")


def _days(name: str) -> timedelta:
    return timedelta(days=getattr(settings, name))


def abandoned_signups_purge(*, dry_run: bool = False) -> PurgeReport:
    """Warn the accounts that reach the warning age, then remove those that are old
    enough and were warned long enough ago. Idempotent: each address is warned once,
    and a second run removes nothing more. ``dry_run`` writes nothing."""
    now = timezone.now()
    report = PurgeReport(dry_run=dry_run)
    warn_age = _days("ABANDONED_SIGNUP_DAYS") - _days("ABANDONED_SIGNUP_WARNING_DAYS")
    to_warn = abandoned_signups(joined_before=now - warn_age).exclude(abandon_warning_sent())
    for account in to_warn:
        report.warned.append(mask_email(account.email))
        if not dry_run:
            abandoned_signup_warn(account=account)
    to_remove = abandoned_signups(joined_before=now - _days("ABANDONED_SIGNUP_DAYS")).filter(
        abandon_warning_sent(sent_before=now - _days("ABANDONED_SIGNUP_WARNING_DAYS")))
    for account in to_remove:
        if dry_run:
            report.removed.append(mask_email(account.email))
        elif abandoned_signup_remove(account=account):
            report.removed.append(mask_email(account.email))
    return report


def abandoned_signup_warn(*, account: User) -> None:
    """Queue the warning to the account's current address (once per address)."""
    removal = max(account.date_joined + _days("ABANDONED_SIGNUP_DAYS"),
                  timezone.now() + _days("ABANDONED_SIGNUP_WARNING_DAYS"))
    removal_date = formats.date_format(timezone.localtime(removal), "DATE_FORMAT")
    with transaction.atomic():
        email_queue(account=account, kind=EmailKind.ABANDON_WARNING, key=f"{account.pk}:{account.email}",
                    context={"removal_date": removal_date})
        event_record(account_id=account.pk, subject="account", to_state="warned",
                     why=f"never verified or used: removal on {removal_date} unless the person logs in")
    logger.info("abandoned signup warned: account %s, %s, removal on %s",
                account.pk, account.email, removal_date)


def abandoned_signup_remove(*, account: User) -> bool:
    """Remove one abandoned account and everything it owns, if it still qualifies
    under a row lock (the person may have logged in or verified meanwhile). Returns
    True if it was removed."""
    now = timezone.now()
    with transaction.atomic():
        locked = User.objects.select_for_update().filter(pk=account.pk).first()
        still_abandoned = locked is not None and abandoned_signups(
            joined_before=now - _days("ABANDONED_SIGNUP_DAYS")).filter(
            abandon_warning_sent(sent_before=now - _days("ABANDONED_SIGNUP_WARNING_DAYS")),
            pk=account.pk).exists()
        if not still_abandoned:
            return False
        masked = mask_email(locked.email)
        # account=None: the account's own timeline goes with it; this line stays.
        event_record(account_id=None, subject="account", from_state="unverified", to_state="removed",
                     why=f"abandoned signup removed: account {locked.pk}, {masked}, joined "
                         f"{locked.date_joined:%Y-%m-%d}, never verified or used")
        locked.delete()
    logger.info("abandoned signup removed: account %s, %s", account.pk, masked)
    return True


def ensure_schedule() -> None:
    """Create the daily purge schedule if it is missing (run by ``migrate``)."""
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": "accounts.tasks.purge_abandoned_signups", "schedule_type": Schedule.DAILY,
                  "repeats": -1},
    )
