"""Input for /help/ and for the console's buttons. Forms validate; they write nothing."""
from __future__ import annotations

import unicodedata

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from accounts.forms import EmailInput, phone_input
from support import messages as words
from support.models import CallOutcome, TicketStatus


def refuse_control_characters_but_lines(value: str) -> None:
    """A message may have line breaks and tabs; other control characters (NUL ...)
    have no place in it."""
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in value):
        raise ValidationError(_("Please remove the invisible control characters from your message."),
                              code="control_characters")


class ContactForm(forms.Form):
    email = EmailInput(label=_("Your email address"),
                       help_text=_("We'll reply here. If you signed up, use the address you signed up with."))
    message = forms.CharField(
        label=_("How can we help?"), max_length=5000, validators=[refuse_control_characters_but_lines],
        widget=forms.Textarea(attrs={"rows": 7}),
        error_messages={"required": _("Please tell us what happened, in a sentence or two."),
                        "max_length": _("Please keep your message under %(limit_value)d characters.")},
    )


class CallbackForm(forms.Form):
    """Ask us to call. Signed in, the address is the account's (no email field) and the
    phone on file is used unless another is typed; logged out, both are typed. The
    phone is validated like signup's. Field ids carry a ``callback_`` prefix, since
    the form shares its page with others (/setup/'s address form, /help/'s)."""

    email = EmailInput(label=_("Your email address"),
                       help_text=_("If you signed up, use the address you signed up with."))
    phone = phone_input(label=_("Number to call"),
                        required_message=_("Please enter a number we can call, with the country code."))
    note = forms.CharField(
        label=_("Anything we should know before we call? (optional)"), required=False, max_length=500,
        validators=[refuse_control_characters_but_lines], widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"max_length": _("Please keep this under %(limit_value)d characters.")})

    def __init__(self, *args, account=None, **kwargs):
        kwargs.setdefault("auto_id", "callback_%s")
        super().__init__(*args, **kwargs)
        self.account = account
        if account is not None:
            del self.fields["email"]
            if account.phone:
                self.fields["phone"].required = False
                self.fields["phone"].label = _("Another number (optional)")

    def clean(self):
        data = super().clean()
        if self.account is not None and not data.get("phone") and "phone" not in self.errors:
            data["phone"] = self.account.phone
        return data


# --- The console's buttons -------------------------------------------------------------------

class ButtonForm(forms.Form):
    """Every button's confirmation form carries the click's key: the confirmation page
    mints a fresh one, and submitting the same form twice does the work once."""

    action_key = forms.CharField(widget=forms.HiddenInput, max_length=64,
                                 validators=[RegexValidator(r"^[0-9a-f]{32}$")])


class CorrectEmailForm(ButtonForm):
    email = EmailInput(label=_("Correct email address"))


class MarkVerifiedForm(ButtonForm):
    confirmed = forms.BooleanField(
        label=_("I called the number on the account and confirmed who they are."),
        error_messages={"required": _("Only mark the address verified after confirming who they are by phone.")})


class ReplyForm(ButtonForm):
    THEN = [
        (TicketStatus.WAITING_ON_CUSTOMER, _("then wait for their answer")),
        (TicketStatus.RESOLVED, _("then resolve the ticket")),
        (TicketStatus.OPEN, _("then keep it open")),
    ]
    body = forms.CharField(label=_("Your reply"), max_length=5000, widget=forms.Textarea(attrs={"rows": 10}),
                           validators=[refuse_control_characters_but_lines])
    then = forms.ChoiceField(label=_("After sending"), choices=THEN, initial=TicketStatus.WAITING_ON_CUSTOMER,
                             widget=forms.RadioSelect)


class ReasonForm(ButtonForm):
    """Closing or reopening an account says why, for the timeline."""

    reason = forms.CharField(label=_("Why"), max_length=500, validators=[refuse_control_characters_but_lines],
                             help_text=_("Goes on the account's timeline, e.g. \"spam signup: the provider refuses "
                                         "the company name\"."),
                             error_messages={"required": _("Say why, for the timeline.")})


class RecordCallForm(ButtonForm):
    outcome = forms.ChoiceField(label=_("How did it go?"), choices=CallOutcome.choices, widget=forms.RadioSelect)
    note = forms.CharField(label=_("Note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 4}),
                           validators=[refuse_control_characters_but_lines],
                           help_text=_("What you said or agreed, for whoever reads the ticket next."))


class ConsoleLoginForm(AdminAuthenticationForm):
    """The console's password step: Django's admin form, in our words."""

    error_messages = {**AdminAuthenticationForm.error_messages, "invalid_login": words.CONSOLE_LOGIN_FAILED}
