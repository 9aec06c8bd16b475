"""Changing the address in strict mode (``SIGNUP_PREVENT_ENUMERATION``).

Answering "another account already uses this address" would tell anyone logged in
which addresses are registered. So in strict mode asking for a new address changes
nothing yet and answers the same either way: a free address gets a link that moves
the account to it (``email_change_link_send``); a taken one gets a notice to its
owner (``email_change_taken_notify``). The account keeps its address until the link
is confirmed, so the status page stays true in both cases. The link is minted when
the email is rendered (``accounts.tokens.make_email_change_token``), never stored;
opening it shows a confirm button and only the POST changes anything (mail scanners
open every link).
"""
from __future__ import annotations

from django.db import transaction

from accounts.models import User, normalize_email
from accounts.selectors import email_change_link_account, user_by_email
from accounts.services import (
    AlreadyVerified,
    account_change_email,
    email_change_link_send,
    email_change_taken_notify,
)


def email_change_request(*, account: User, email: str) -> str:
    """Ask to move ``account`` to ``email``. Returns the normalised new address and
    nothing else on purpose: the caller must answer identically whether it is taken.
    Raises AlreadyVerified (the same for every address). The caller handles an
    address equal to the current one (``account_change_email``: a fresh link, unless
    one is on its way)."""
    new = normalize_email(email)
    account.refresh_from_db(fields=["email", "email_verified_at"])
    if account.email_verified:
        raise AlreadyVerified(account.email)
    owner = user_by_email(email=new)
    if owner is None:
        email_change_link_send(account=account, email=new)
    else:
        email_change_taken_notify(owner=owner, requester=account)
    return new


def email_change_confirm(*, token: str) -> User | None:
    """Apply the change a link names (the confirm button on the link's page) and mark
    the new address verified: the link reached its inbox. Returns the account, or None
    for a link that is tampered with, expired, used or overtaken (the account's
    address changed meanwhile). Raises EmailTaken when another account took the
    address since the link was sent."""
    with transaction.atomic():
        found = email_change_link_account(token=token, lock=True)
        if found is None:
            return None
        account, new = found
        return account_change_email(account=account, email=new, proven=True)
