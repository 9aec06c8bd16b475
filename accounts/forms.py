"""Input validation for the person's forms. Forms own input errors; they never
write anything (the views call services and flows)."""
from __future__ import annotations

import unicodedata

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, ProhibitNullCharactersValidator
from django.utils.translation import gettext_lazy as _
from phonenumber_field.formfields import PhoneNumberField

from accounts.messages.when import lifetime_words
from accounts.models import User, normalize_email

CONTROL_CHARACTERS_MESSAGE = _("Please remove the invisible control characters from this field.")
TOO_LONG_MESSAGE = _("Please keep this under %(limit_value)d characters.")


def refuse_control_characters(value: str) -> None:
    """NUL and other control characters have no place in a name or an address; say so
    instead of storing them (tabs and newlines included: these are one-line fields)."""
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValidationError(CONTROL_CHARACTERS_MESSAGE, code="control_characters")


def _without_django_nul_check(field: forms.Field) -> forms.Field:
    """Our check covers NUL too: drop Django's, so a NUL is refused once, in our words."""
    field.validators = [v for v in field.validators if not isinstance(v, ProhibitNullCharactersValidator)]
    return field


class EmailInput(forms.EmailField):
    default_error_messages = {
        "required": _("Please enter your work email address."),
        "invalid": _("That doesn't look like an email address. Check it for typos, like name@company.com."),
        "max_length": TOO_LONG_MESSAGE,
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        kwargs.setdefault("validators", [refuse_control_characters])
        kwargs.setdefault("widget", forms.EmailInput(attrs={"autocomplete": "email"}))
        super().__init__(**kwargs)
        _without_django_nul_check(self)

    def to_python(self, value):
        # Normalise first, so the length and format checks judge the address as it will
        # be stored and looked up: lower-casing after them let 'İ' * 130 (each becomes
        # two characters) reach the database as 272 characters.
        return normalize_email(super().to_python(value))


def _text(label, *, max_length: int, autocomplete: str, required_message) -> forms.CharField:
    return _without_django_nul_check(forms.CharField(
        label=label, max_length=max_length, validators=[refuse_control_characters],
        widget=forms.TextInput(attrs={"autocomplete": autocomplete}),
        error_messages={"required": required_message, "max_length": TOO_LONG_MESSAGE},
    ))


PHONE_HELP = _("With the country code, e.g. +1 415 555 0100.")


def phone_input(*, label, required_message, help_text=PHONE_HELP, required: bool = True) -> PhoneNumberField:
    """A phone number, validated (django-phonenumber-field keeps invalid input raw
    unless the form refuses it, DESIGN) and normalised to E.164. Signup and the
    call-back form share it, so a number that signs up is a number we can call."""
    return PhoneNumberField(
        label=label, max_length=32, required=required, help_text=help_text,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "type": "tel"}),
        error_messages={"required": required_message,
                        "invalid": _("We couldn't read that phone number. Include the country code, "
                                     "like +1 415 555 0100."),
                        "max_length": TOO_LONG_MESSAGE,
                        "null_characters_not_allowed": CONTROL_CHARACTERS_MESSAGE},
    )


class SignupForm(forms.Form):
    name = _text(_("Your name"), max_length=150, autocomplete="name",
                 required_message=_("Please tell us your name."))
    email = EmailInput(label=_("Work email"))
    phone = phone_input(
        label=_("Phone"),
        help_text=_("With the country code, e.g. +1 415 555 0100. We only call if you ask for help."),
        required_message=_("Please enter a phone number so we can help you if setup needs a hand."))
    company = _text(_("Company"), max_length=150, autocomplete="organization",
                    required_message=_("Please enter your company's name."))
    password = forms.CharField(
        label=_("Password"), max_length=256, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
        error_messages={"required": _("Please choose a password."), "max_length": TOO_LONG_MESSAGE,
                        "null_characters_not_allowed": CONTROL_CHARACTERS_MESSAGE},
    )

    def clean(self):
        data = super().clean()
        password = data.get("password")
        if password:
            probe = User(email=data.get("email", ""), name=data.get("name", ""),
                         company=data.get("company", ""))
            try:
                password_validation.validate_password(password, probe)
            except ValidationError as error:
                self.add_error("password", error)
        return data


class LoginForm(forms.Form):
    email = EmailInput(label=_("Email"))
    password = forms.CharField(
        label=_("Password"), max_length=256, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        error_messages={"required": _("Please enter your password."), "max_length": TOO_LONG_MESSAGE,
                        "null_characters_not_allowed": CONTROL_CHARACTERS_MESSAGE},
    )


class ChangeEmailForm(forms.Form):
    email = EmailInput(label=_("Correct email address"))


class CodeLoginForm(forms.Form):
    """Sign in with the one-time code support read out over the phone."""

    email = EmailInput(label=_("Email"))
    code = forms.CharField(
        label=_("Code from support"), max_length=32, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        error_messages={"required": _("Please enter the code we read out to you.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The lifetime the code really has (SIGNIN_CODE_TIMEOUT), not a copy of the default.
        self.fields["code"].help_text = _("8 digits, e.g. 1234 5678. It works once, for {lifetime}.").format(
            lifetime=lifetime_words(settings.SIGNIN_CODE_TIMEOUT))


class PasswordResetRequestForm(forms.Form):
    email = EmailInput(label=_("Email address"))


class NewPasswordForm(SetPasswordForm):
    """Django's set-password form (it validates against the account), in our words."""

    error_messages = {
        "password_mismatch": _("The two passwords don't match. Please type the same new password twice."),
    }

    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        for name, label in (("new_password1", _("New password")),
                            ("new_password2", _("The same password again"))):
            field = self.fields[name]
            field.label = label
            field.max_length = 256
            field.validators.append(MaxLengthValidator(256))
            field.error_messages.update({
                "required": _("Please type your new password in both boxes."),
                "max_length": TOO_LONG_MESSAGE,
                "null_characters_not_allowed": CONTROL_CHARACTERS_MESSAGE,
            })
        self.fields["new_password2"].help_text = ""
