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


def lifetime_words(seconds: int) -> str:
    """How long something lasts, as a person says it: "15 minutes", "3 hours", "3 days".
    Read from the setting that enforces it, so the words follow the setting; a
    lifetime that is no whole number of its unit is rounded down, never promised
    longer than it lasts."""
    seconds = int(seconds)
    for unit in (86400, 3600):
        if seconds >= unit and (seconds % unit == 0 or seconds >= 2 * unit):
            n = seconds // unit
            if unit == 86400:
                return ngettext("%(n)d day", "%(n)d days", n) % {"n": n}
            return ngettext("%(n)d hour", "%(n)d hours", n) % {"n": n}
    n = max(1, seconds // 60)
    return ngettext("%(n)d minute", "%(n)d minutes", n) % {"n": n}
