"""One-time sign-in codes, in the manner of django.contrib.auth.tokens.

A code is 8 random digits (``secrets``), read out over the phone as "1234 5678". It
is shown once, on the console page of the click that issued it, and stored nowhere:
only ``code_hash`` (a salted, slow password hash of account id + code) is kept, and
nothing in the database (not the click's key, which is kept only as a digest,
``click_digest``) lets anyone, even with SECRET_KEY, rebuild a live code. A
resubmitted click therefore cannot show the code again: it says one was issued.

10^8 codes, at most SIGNIN_CODE_MAX_TRIES guesses per code and a life of
SIGNIN_CODE_TIMEOUT seconds make guessing hopeless (5 in 100 million); the rate limit
on /login/code/ bounds guesses across codes.
"""
from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.hashers import check_password, make_password

DIGITS = 8


def new_code() -> str:
    """A fresh code: 8 digits from the operating system's random source, zero-padded."""
    return str(secrets.randbelow(10**DIGITS)).zfill(DIGITS)


def click_digest(idempotency_key: str) -> str:
    """How a click's key is stored: enough to recognise the same click again."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


def hash_code(account_id: int, code: str) -> str:
    """The stored form: a password hash (Argon2 in production, salted per code). A fast
    HMAC of 8 digits would fall to 10^8 tries offline by anyone holding the database
    and SECRET_KEY; at ~100 ms a try that takes years, while checking a typed code
    costs one hash (and /login/code/ is rate-limited)."""
    return make_password(f"{account_id}:{code}")


def normalize_code(value: str) -> str:
    """What the person typed, without the spaces or dashes people add: digits only."""
    return "".join(ch for ch in (value or "") if ch in "0123456789")


def code_matches(account_id: int, typed: str, code_hash: str) -> bool:
    """Constant-time check. False for anything that is not exactly 8 digits."""
    code = normalize_code(typed)
    if len(code) != DIGITS:
        return False
    return check_password(f"{account_id}:{code}", code_hash)  # constant-time comparison inside


def display(code: str) -> str:
    """How the console shows it, for reading aloud: "1234 5678"."""
    return f"{code[:4]} {code[4:]}"
