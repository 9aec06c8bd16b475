"""The signup journey, shared by the view and the demo command.

Re-registering resumes, it never blocks (DESIGN principle 5): the right password
for a registered address is proof enough, so the person is welcomed back and every
unfinished step is re-dispatched. Another password gets a way forward (log in or
reset), and the owner of the address is told by email.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from django.contrib.auth.hashers import make_password

from accounts.models import User
from accounts.selectors import user_by_email
from accounts.services import EmailTaken, account_register, account_resume, signup_attempt_notify


class Outcome(enum.Enum):
    CREATED = "created"  # a new account; log the person in
    RESUMED = "resumed"  # same address, right password; log in, "welcome back"
    TAKEN = "taken"  # same address, another password; never logged in


@dataclass(frozen=True)
class SignupResult:
    outcome: Outcome
    account: User | None  # None for TAKEN: the caller must not learn who it is


def signup(*, name: str, email: str, company: str, password: str, phone: str = "") -> SignupResult:
    """Register, resume or refuse. Does not log anyone in (the view does)."""
    existing = user_by_email(email=email)
    if existing is None:
        try:
            account = account_register(name=name, email=email, company=company,
                                       password=password, phone=phone)
            return SignupResult(Outcome.CREATED, account)
        except EmailTaken:  # a simultaneous signup with this address won the race
            existing = user_by_email(email=email)
    return _existing(existing, password)


def _existing(account: User | None, password: str) -> SignupResult:
    if account is not None and account.is_active and account.check_password(password):
        account_resume(account=account)
        return SignupResult(Outcome.RESUMED, account)
    if account is None:
        # The racing signup rolled back after all; spend the same hashing work so
        # this path takes as long as the others. (Not check_password(password, None):
        # Django 5.2 raises TypeError for a None hash.)
        make_password(password)
    else:
        signup_attempt_notify(account=account)
    return SignupResult(Outcome.TAKEN, None)
