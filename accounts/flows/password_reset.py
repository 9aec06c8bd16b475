"""The password reset journey: ask for a link, then choose a new password.

Nothing here may tell a registered address from an unknown one (DESIGN principle 5):
the request answers the same page either way and spends the same Argon2 work on
both paths. What still differs is one small insert (the owed email) on the
registered path; the hash, about 100 ms, dwarfs it. The link itself is minted when
the email is rendered, so the token is never stored; the confirm view (Django's)
moves it out of the address bar before the form is shown.
"""
from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.utils.crypto import get_random_string

from accounts.selectors import user_by_email
from accounts.services import password_reset_send


def password_reset_request(*, email: str) -> None:
    """Owe a reset link to the active account using ``email``, if there is one.
    Returns nothing on purpose: the caller must answer identically either way."""
    account = user_by_email(email=email)
    # One hash with the default hasher (Argon2) on both paths: the response time
    # does not tell a registered address from an unknown one.
    make_password(get_random_string(20))
    if account is None or not account.is_active or not account.has_usable_password():
        return
    password_reset_send(account=account)
