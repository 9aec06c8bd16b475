"""``{% page_has_errors as name %}``: whether any form on the page came back with
errors, so the page's <title> can start with "Error: " (the first thing a screen
reader reads after a failed submit), whatever the form is called in the context."""
from __future__ import annotations

from django import forms, template

register = template.Library()


@register.simple_tag(takes_context=True)
def page_has_errors(context) -> bool:
    return any(isinstance(value, forms.BaseForm) and value.is_bound and value.errors
               for value in context.flatten().values())
