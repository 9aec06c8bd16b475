"""Input validation for the person's forms. Forms own input errors; they never
write anything (the views call services and flows)."""
from __future__ import annotations

import unicodedata

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from phonenumber_field.formfields import PhoneNumberField

from accounts.models import User


def refuse_control_characters(value: str) -> None:
    """NUL and other control characters have no place in a name or an address; say so
    instead of storing them (tabs and newlines included: these are one-line fields)."""
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValidationError(_("Please remove the invisible control characters from this field."),
                              code="control_characters")


class EmailInput(forms.EmailField):
    default_error_messages = {
        "required": _("Please enter your work email address."),
        "invalid": _("That doesn't look like an email address. Check it for typos, like name@company.com."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        kwargs.setdefault("validators", [refuse_control_characters])
        kwargs.setdefault("widget", forms.EmailInput(attrs={"autocomplete": "email"}))
        super().__init__(**kwargs)

    def clean(self, value):
        return super().clean(value).lower()


def _text(label, *, max_length: int, autocomplete: str, required_message) -> forms.CharField:
    return forms.CharField(
        label=label, max_length=max_length, validators=[refuse_control_characters],
        widget=forms.TextInput(attrs={"autocomplete": autocomplete}),
        error_messages={"required": required_message,
                        "max_length": _("Please keep this under %(limit_value)d characters.")},
    )


class SignupForm(forms.Form):
    name = _text(_("Your name"), max_length=150, autocomplete="name",
                 required_message=_("Please tell us your name."))
    email = EmailInput(label=_("Work email"))
    phone = PhoneNumberField(
        label=_("Phone"), max_length=32,
        help_text=_("With the country code, e.g. +1 415 555 0100. We only call if you ask for help."),
        widget=forms.TextInput(attrs={"autocomplete": "tel", "type": "tel"}),
        error_messages={"required": _("Please enter a phone number so we can help you if setup needs a hand."),
                        "invalid": _("We couldn't read that phone number. Include the country code, "
                                     "like +1 415 555 0100.")},
    )
    company = _text(_("Company"), max_length=150, autocomplete="organization",
                    required_message=_("Please enter your company's name."))
    password = forms.CharField(
        label=_("Password"), max_length=256, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
        error_messages={"required": _("Please choose a password.")},
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
        error_messages={"required": _("Please enter your password.")},
    )


class ChangeEmailForm(forms.Form):
    email = EmailInput(label=_("Correct email address"))


class CodeLoginForm(forms.Form):
    """Sign in with the one-time code support read out over the phone."""

    email = EmailInput(label=_("Email"))
    code = forms.CharField(
        label=_("Code from support"), max_length=32, strip=True,
        help_text=_("8 digits, e.g. 1234 5678. It works once, for 15 minutes."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        error_messages={"required": _("Please enter the code we read out to you.")},
    )
