"""Small display helpers for the console's templates."""
from __future__ import annotations

from django import template

from support.admin.crumbs import page_crumbs
from support.messages import STAFF_ACCOUNT_SEES, console_duration, console_time

register = template.Library()


register.filter("console_time", console_time)  # "5 Mar 2025, 14:03", in TIME_ZONE
# "3 hours, 5 minutes", "less than a minute"; an argument is the end (now without one)
register.filter("console_duration", console_duration)


@register.simple_tag
def staff_account_sees() -> str:
    """What a staff account's page says where a customer's says what they see."""
    return str(STAFF_ACCOUNT_SEES)


@register.inclusion_tag("admin/support/_crumbs.html", takes_context=True)
def console_crumbs(context) -> dict:
    """The page's breadcrumbs, in the console's one scheme (support.admin.crumbs)."""
    return {"crumbs": page_crumbs(context)}
