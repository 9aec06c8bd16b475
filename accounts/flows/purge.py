"""Abandoned signups: accounts never verified and never used are removed after
ABANDONED_SIGNUP_DAYS (30), so a mistyped or squatted address goes back to its real
owner. The address is warned ABANDONED_SIGNUP_WARNING_DAYS (7) before; a removal
never happens sooner than that after the warning reached the address, even when it
went out late. Run daily by django-q2 (``ensure_schedule``) and by ``manage.py
purge_abandoned_signups``.

"Used" means a login after the one signup itself makes: the person who comes back
keeps their account, verified or not. Never removed (``abandoned_signups``): an
account with an open ticket (support is handling it), one with a step still pending
or running, one whose workspace step failed (support's), and one whose warning
failed or bounced (nobody was warned, so the clock never starts).

Removing an account with a workspace takes two moves. First, under the account's
lock, the account is closed (it can no longer log in) and the workspace's removal at
the provider is owed as a durable step (provisioning.removal). Then, once the
provider confirms (``workspace_removed``, or this flow's next run as the backstop),
the account and everything it owns are deleted. A removal the provider refuses
leaves the account closed and is re-armed on each run. Every removal is logged
(address masked) and recorded as a timeline event with no account, which outlives
the account's own rows.
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
from accounts.selectors import (
    abandon_warning_delivered,
    abandon_warning_sent,
    abandoned_signups,
    accounts_being_removed,
)
from accounts.services import account_close
from provisioning.durable import StepStatus
from provisioning.models import DeprovisionRequest, Workspace
from provisioning.removal import workspace_removal_request, workspace_removal_retry
from provisioning.services import event_record

logger = logging.getLogger(__name__)

SCHEDULE_NAME = "purge_abandoned_signups"
REMOVED = "removed"  # the account is gone
REMOVING = "removing"  # closed; its workspace's removal at the provider is owed


@dataclass
class PurgeReport:
    warned: list[str] = field(default_factory=list)  # masked addresses
    removed: list[str] = field(default_factory=list)
    removing: list[str] = field(default_factory=list)  # waiting for the provider to remove the workspace
    dry_run: bool = False

    def __str__(self) -> str:
        verb = ("would warn", "would remove") if self.dry_run else ("warned", "removed")
        text = (f"{verb[0]} {len(self.warned)}: {', '.join(self.warned) or '-'}; "
                f"{verb[1]} {len(self.removed)}: {', '.join(self.removed) or '-'}")
        if self.removing:
            text += f"; removing at the provider {len(self.removing)}: {', '.join(self.removing)}"
        return text


def _days(name: str) -> timedelta:
    return timedelta(days=getattr(settings, name))


def _removable(now):
    return abandoned_signups(joined_before=now - _days("ABANDONED_SIGNUP_DAYS")).filter(
        abandon_warning_delivered(sent_before=now - _days("ABANDONED_SIGNUP_WARNING_DAYS")))


def abandoned_signups_purge(*, dry_run: bool = False) -> PurgeReport:
    """Warn the accounts that reach the warning age; remove those that are old
    enough and were warned long enough ago; finish (or re-arm) removals waiting on
    the provider. Idempotent: each address is warned once, and a second run removes
    nothing more. ``dry_run`` writes nothing."""
    now = timezone.now()
    report = PurgeReport(dry_run=dry_run)
    warn_age = _days("ABANDONED_SIGNUP_DAYS") - _days("ABANDONED_SIGNUP_WARNING_DAYS")
    to_warn = abandoned_signups(joined_before=now - warn_age).exclude(abandon_warning_sent())
    for account in to_warn:
        report.warned.append(mask_email(account.email))
        if not dry_run:
            abandoned_signup_warn(account=account)
    for account in _removable(now):
        outcome = REMOVED if dry_run else abandoned_signup_remove(account=account)
        if outcome:
            (report.removed if outcome == REMOVED else report.removing).append(mask_email(account.email))
    if not dry_run:
        _follow_removals(report)
    return report


def _follow_removals(report: PurgeReport) -> None:
    """The backstop for removals under way: delete the accounts whose workspace is
    gone (the announcement may have been lost), and re-arm removals the provider
    refused; the rest are still with the engine."""
    for account in accounts_being_removed():
        masked = mask_email(account.email)
        if account.removal_status == StepStatus.SUCCEEDED:
            if abandoned_signup_finish(account_id=account.pk):
                report.removed.append(masked)
            continue
        if account.removal_status == StepStatus.FAILED:
            with transaction.atomic():
                workspace_removal_retry(request=DeprovisionRequest.objects.filter(account=account)
                                        .order_by("-created_at", "-pk").first(), actor="abandoned-signup purge")
        if masked not in report.removing:
            report.removing.append(masked)


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


def abandoned_signup_remove(*, account: User) -> str | None:
    """Remove one abandoned account, if it still qualifies under a row lock (the
    person may have logged in, written to us or verified meanwhile). Without a
    workspace it is deleted now (REMOVED). With one, the account is closed and the
    workspace's removal at the provider is owed (REMOVING); the account is deleted
    once that succeeds (``abandoned_signup_finish``). Returns None if it no longer
    qualifies."""
    with transaction.atomic():
        locked = User.objects.select_for_update().filter(pk=account.pk).first()
        if locked is None or not _removable(timezone.now()).filter(pk=locked.pk).exists():
            return None
        workspace = Workspace.objects.filter(owner=locked).first()
        if workspace is None:
            _delete(locked)
            return REMOVED
        # Closed first, so nobody logs in to a workspace that is being removed.
        account_close(account=locked, actor="abandoned-signup purge",
                      reason="abandoned signup: closed while its workspace is removed at the provider")
        workspace_removal_request(workspace=workspace, actor="abandoned-signup purge",
                                  why="abandoned signup: never verified or used, warned a week ago")
    logger.info("abandoned signup closed, removing its workspace: account %s, %s", account.pk,
                mask_email(account.email))
    return REMOVING


def abandoned_signup_finish(*, account_id: int) -> bool:
    """Delete a closed abandoned signup whose workspace the provider has removed.
    Idempotent; an account without such a removal (a staff-closed one) or still
    holding a workspace is left alone. Returns True if it was deleted."""
    with transaction.atomic():
        locked = User.objects.select_for_update().filter(pk=account_id, is_active=False).first()
        if (locked is None or Workspace.objects.filter(owner=locked).exists()
                or not DeprovisionRequest.objects.filter(account=locked, status=StepStatus.SUCCEEDED).exists()):
            return False
        _delete(locked)
    return True


def _delete(locked: User) -> None:
    pk, masked = locked.pk, mask_email(locked.email)
    # account=None: the account's own timeline goes with it; this line stays.
    event_record(account_id=None, subject="account", from_state="unverified", to_state="removed",
                 why=f"abandoned signup removed: account {locked.pk}, {masked}, joined "
                     f"{locked.date_joined:%Y-%m-%d}, never verified or used")
    locked.delete()
    logger.info("abandoned signup removed: account %s, %s", pk, masked)


def ensure_schedule() -> None:
    """Create the daily purge schedule if it is missing (run by ``migrate``)."""
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": "accounts.tasks.purge_abandoned_signups", "schedule_type": Schedule.DAILY,
                  "repeats": -1},
    )
