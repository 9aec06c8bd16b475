"""Email verification tokens, in the manner of django.contrib.auth.tokens.

A token is ``<uidb64>.<timestamp>-<hmac>``. The HMAC covers the account id, its
current address and whether it is verified, so a link dies when it is used (the
account becomes verified) and when the address changes (old links point at an
address the account no longer has). Nothing is stored; links expire after
EMAIL_VERIFICATION_TIMEOUT seconds (3 days by default).
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_decode, urlsafe_base64_encode


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "accounts.tokens.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user, timestamp: int) -> str:
        verified = "" if user.email_verified_at is None else user.email_verified_at.isoformat()
        return f"{user.pk}{user.email}{verified}{timestamp}"

    def check_token(self, user, token) -> bool:
        """The parent's check, with our own lifetime (it reads PASSWORD_RESET_TIMEOUT).
        False for every malformed input; the comparison is constant-time."""
        if not (user and isinstance(token, str)):
            return False
        try:
            ts_b36, _ = token.split("-")
            ts = base36_to_int(ts_b36)
        except ValueError:
            return False
        if not any(constant_time_compare(self._make_token_with_timestamp(user, ts, secret), token)
                   for secret in [self.secret, *self.secret_fallbacks]):
            return False
        return (self._num_seconds(self._now()) - ts) <= settings.EMAIL_VERIFICATION_TIMEOUT


verification_tokens = EmailVerificationTokenGenerator()


def make_verification_token(user) -> str:
    return f"{urlsafe_base64_encode(force_bytes(user.pk))}.{verification_tokens.make_token(user)}"


def split_verification_token(token: str) -> tuple[int, str] | None:
    """(account id, token) or None for anything malformed. Never raises."""
    uidb64, _, rest = (token or "").partition(".")
    try:
        return int(urlsafe_base64_decode(uidb64).decode()), rest
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError):
        return None


# Strict mode's address change (accounts.flows.email_change). The link names the
# account, the address it had when the change was asked for and the new one; it is
# signed (HMAC over SECRET_KEY, salted so no other signature of ours passes for it)
# and expires after EMAIL_VERIFICATION_TIMEOUT seconds. Nothing is stored: the link
# dies when the account's address changes or it becomes verified, which confirming
# does (accounts.selectors.email_change_link_account checks both).
EMAIL_CHANGE_SALT = "accounts.tokens.email_change"


def make_email_change_token(*, account_id: int, old: str, new: str) -> str:
    return signing.dumps({"a": account_id, "o": old, "n": new}, salt=EMAIL_CHANGE_SALT, compress=True)


def read_email_change_token(token: str) -> tuple[int, str, str] | None:
    """(account id, old address, new address) or None for a link that is tampered
    with, expired or malformed. Never raises."""
    try:
        value = signing.loads(token or "", salt=EMAIL_CHANGE_SALT, max_age=settings.EMAIL_VERIFICATION_TIMEOUT)
        account_id, old, new = value["a"], value["o"], value["n"]
    except (signing.BadSignature, TypeError, KeyError, ValueError):
        return None
    if not (isinstance(account_id, int) and isinstance(old, str) and isinstance(new, str)):
        return None
    return account_id, old, new
