"""The console's second factor (DESIGN principle 8): every staff sign-in needs a code
from an authenticator app (TOTP, django-otp's ``TOTPDevice``) or a one-time backup code
(django-otp's ``StaticDevice``), on top of the password.

Enrolment is trust on first use: a staff member with no confirmed device who has just
given the right password may set up an authenticator app, and gets backup codes with
it. Once any device is confirmed, a new one can only be added from a session that has
already passed the second factor, so a stolen password alone never enrols a device.

Recovery when a phone is lost: an administrator runs ``manage.py addstatictoken EMAIL``
(django-otp's command; it prints a one-time code to read out), or deletes the person's
devices in the console (they then enrol again at their next sign-in).

django-otp stores the TOTP key and the backup codes as they are (it needs the key to
compute codes): the database is as sensitive as the codes it holds. Wrong codes slow
the device down (django-otp's throttling doubles the wait after each) on top of the
sign-in rate limit.
"""
from __future__ import annotations

import logging
from base64 import b32encode

import qrcode
import qrcode.image.svg
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User

log = logging.getLogger(__name__)

BACKUP_CODE_COUNT = 10
APP_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"


class SecondFactorError(Exception):
    """Base of what the second-factor services refuse to do."""


class WrongCode(SecondFactorError):
    """The code does not match the device (or the device is paused after wrong codes)."""


class NoEnrolmentStarted(SecondFactorError):
    """There is no authenticator app waiting to be confirmed for this person."""


# --- Reads ----------------------------------------------------------------------------

def has_second_factor(*, user: User) -> bool:
    """Whether the person has any confirmed device (an app, or backup codes), even one
    whose backup codes are all used up: that person enrolled, so only a session past
    the second factor may add a device. (Counting only codes left would hand a first
    sign-in's single addstatictoken code, once used, back to trust on first use: the
    password alone would then set up an app.) With nothing left to type, they ask for
    a code (``manage.py addstatictoken``), as SECOND_FACTOR_LOST says."""
    return (TOTPDevice.objects.filter(user=user, confirmed=True).exists()
            or StaticDevice.objects.filter(user=user, confirmed=True).exists())


def may_enrol(*, user: User, verified: bool) -> bool:
    """First enrolment after the password, or a new app from a session that passed the
    second factor: never a new device on the strength of a password alone."""
    return verified or not has_second_factor(user=user)


def pending_app(*, user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def app_secret(device: TOTPDevice) -> str:
    """The key as people type it into an app: base32, in groups of four."""
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def app_qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URL as an inline SVG QR code (markup, no script, no image request)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return image.to_string(encoding="unicode")


# --- Writes ---------------------------------------------------------------------------

def second_factor_verify(*, user: User, code: str):
    """The confirmed device that accepts ``code``, or raise WrongCode. Six digits are
    tried on the authenticator apps only, anything else on the backup codes only, so a
    wrong guess slows down one kind of device, not both. A backup code is used up."""
    code = "".join((code or "").split()).lower()
    devices = (TOTPDevice.objects.filter(user=user, confirmed=True) if code.isdigit() and len(code) == 6
               else StaticDevice.objects.filter(user=user, confirmed=True))
    with transaction.atomic():
        for device in devices.select_for_update():
            if device.verify_token(code):
                return device
    raise WrongCode(user.pk)


def app_enrol_start(*, user: User) -> TOTPDevice:
    """An unconfirmed authenticator app for the person to scan (the one already
    waiting, if any: reloading the page shows the same secret). The caller checks
    ``may_enrol``."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()  # one pending app per person
        device = pending_app(user=user)
        if device is None:
            device = TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)
    return device


def app_enrol_confirm(*, user: User, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the waiting app with a code it shows, replace any older app, and issue a
    fresh set of backup codes (older ones stop working). Returns the device and the
    backup codes, which are shown once. Raises NoEnrolmentStarted or WrongCode."""
    code = "".join((code or "").split())
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        device = pending_app(user=user)
        if device is None:
            raise NoEnrolmentStarted(user.pk)
        if not device.verify_token(code):
            raise WrongCode(user.pk)
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        device.confirmed = True
        codes = backup_codes_replace(user=user)
    log.info("second factor: authenticator app set up for staff account %s", user.pk)
    return device, codes


def backup_codes_replace(*, user: User) -> list[str]:
    """A fresh set of one-time backup codes; earlier ones (including any made with
    ``addstatictoken``) stop working. Returns the codes, to be shown once."""
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes
