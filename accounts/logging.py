"""Log lines an operator can search and a person's details never leak into.

Every line carries the request id and the account id of the request that wrote it
(set by ``accounts.middleware.RequestContextMiddleware`` in context variables, so
they follow the code without being passed around), and anything shaped like an
email address or a phone number is masked before it is written, whoever logged it:
our code, Django, or a library quoting an address in an exception.

``LOG_FORMAT=json`` (the default without DEBUG) writes one JSON object per line;
``plain`` writes the same facts as text for a developer's terminal.

This module is imported by ``LOGGING`` while settings load: stdlib only, no models.
"""
from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
account_id: ContextVar[int | None] = ContextVar("account_id", default=None)

# local@domain.tld; the local part keeps its first character.
# Combining marks count as part of a local part: 'İ' lower-cased is 'i' and U+0307.
_EMAIL = re.compile(r"(?P<first>[\w.%+-])[\w.%+\u0300-\u036f-]*@(?P<domain>[\w-]+(?:\.[\w-]+)+)")
# Phone numbers: international (+ and 8-15 digits, with the usual separators),
# North-American style groups, or a bare run of 10-15 digits. Dates, times,
# durations and ids with dots or letters around them are left alone.
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d(?:[ ().-]{0,2}\d){6,14}"
    r"|\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}"
    r"|\d{10,15}"
    r")(?![\w.]\d|\w)"
)


def mask_email(address: str) -> str:
    """``ada@example.com`` → ``a***@example.com``."""
    return _EMAIL.sub(lambda m: f"{m['first']}***@{m['domain']}", address)


def _mask_phone_match(match: re.Match) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    plus = "+" if text.startswith("+") else ""
    # Keep the first digit (a country code's start) and the last four, as support
    # reads them back on the phone: +1******0100.
    return f"{plus}{digits[0]}{'*' * (len(digits) - 5)}{digits[-4:]}"


def mask_pii(text: str) -> str:
    """Mask every email address and phone number in ``text``."""
    return _PHONE.sub(_mask_phone_match, mask_email(text))


class RequestContextFilter(logging.Filter):
    """Stamp each record with the current request id and account id (or None)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.account_id = account_id.get()
        return True


class MaskPIIFilter(logging.Filter):
    """Mask emails and phone numbers in the message, its arguments, and any
    traceback, before any formatter sees them. Attach it to handlers (a logger's
    filters do not see records propagated from child loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let logging report it as usual
            return True
        record.msg, record.args = mask_pii(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_pii(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_pii(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id,
    account_id, and ``exception`` when there is a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "account_id": getattr(record, "account_id", None),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def bind_account_on_login(sender, request, user, **kwargs) -> None:
    """``user_logged_in`` receiver: lines written after a login in the same request
    carry the account that just logged in."""
    account_id.set(user.pk)
