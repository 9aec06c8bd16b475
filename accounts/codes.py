"""One-time sign-in codes, in the manner of django.contrib.auth.tokens.

A code is 8 digits, read out over the phone as "1234 5678". It is derived from the
console click that issued it (an HMAC of the click's idempotency key under
SECRET_KEY), so a double-submitted click shows the same code instead of minting a
second one; nobody without SECRET_KEY can compute it from the key.

Only ``code_hash`` (an HMAC of account id + code) is stored, and it is compared in
constant time. 10^8 codes, at most SIGNIN_CODE_MAX_TRIES guesses per code and a life
of SIGNIN_CODE_TIMEOUT seconds make guessing hopeless (5 in 100 million); the
rate limit on /login/code/ bounds guesses across codes.
"""
from __future__ import annotations

from django.utils.crypto import constant_time_compare, salted_hmac

DIGITS = 8


def derive_code(idempotency_key: str) -> str:
    """The code for one console click: 8 digits, zero-padded."""
    digest = salted_hmac("accounts.codes.derive", idempotency_key, algorithm="sha256").digest()
    return str(int.from_bytes(digest[:8], "big") % 10**DIGITS).zfill(DIGITS)


def hash_code(account_id: int, code: str) -> str:
    return salted_hmac("accounts.codes.hash", f"{account_id}:{code}", algorithm="sha256").hexdigest()


def normalize_code(value: str) -> str:
    """What the person typed, without the spaces or dashes people add: digits only."""
    return "".join(ch for ch in (value or "") if ch in "0123456789")


def code_matches(account_id: int, typed: str, code_hash: str) -> bool:
    """Constant-time check. False for anything that is not exactly 8 digits."""
    code = normalize_code(typed)
    if len(code) != DIGITS:
        return False
    return constant_time_compare(hash_code(account_id, code), code_hash)


def display(code: str) -> str:
    """How the console shows it, for reading aloud: "1234 5678"."""
    return f"{code[:4]} {code[4:]}"
