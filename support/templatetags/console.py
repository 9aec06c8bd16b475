"""Small display helpers for the console's templates."""
from __future__ import annotations

from django import template

from accounts.messages import in_words as _in_words

register = template.Library()


@register.filter
def in_words(when) -> str:
    """A future time as a person says it: "in about two minutes"."""
    return _in_words(when) if when else "—"
