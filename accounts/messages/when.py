"""Times as a person says them ("in about two minutes"), never raw timestamps."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext


def in_seconds_words(seconds: float) -> str:
    """A wait in seconds as a person says it: "in about 5 minutes"."""
    return in_words(timezone.now() + timedelta(seconds=seconds))


def in_words(when: datetime | None, *, now: datetime | None = None) -> str:
    """A future time as a person says it: "in about two minutes"."""
    if when is None:
        return str(_("soon"))
    seconds = (when - (now or timezone.now())).total_seconds()
    if seconds < 60:
        return str(_("in under a minute"))
    minutes = round(seconds / 60)
    if minutes < 60:
        return ngettext("in about %(n)d minute", "in about %(n)d minutes", minutes) % {"n": minutes}
    hours = round(minutes / 60)
    return ngettext("in about %(n)d hour", "in about %(n)d hours", hours) % {"n": hours}
