"""Small display helpers for the console's templates."""
from __future__ import annotations

from django import template

from support.admin.crumbs import page_crumbs
from support.messages import STAFF_ACCOUNT_SEES, console_duration, console_time, held_until, step_error

register = template.Library()


register.filter("console_time", console_time)  # "5 Mar 2025, 14:03", in TIME_ZONE
# "3 hours, 5 minutes", "less than a minute"; an argument is the end (now without one)
register.filter("console_duration", console_duration)


@register.filter("held_until")
def held_until_filter(opened_by: str | None) -> str:
    """What a step behind the open circuit waits for, from what opened it."""
    return held_until(opened_by or "")


@register.filter
def last_error(step) -> str:
    """A step's last error detail as the console says it (``step_error``: a turn held
    behind the open circuit made no call, whatever the row's older words say)."""
    return step_error(step.last_error_code, step.last_error_detail)


@register.simple_tag
def staff_account_sees() -> str:
    """What a staff account's page says where a customer's says what they see."""
    return str(STAFF_ACCOUNT_SEES)


@register.inclusion_tag("admin/support/_crumbs.html", takes_context=True)
def console_crumbs(context) -> dict:
    """The page's breadcrumbs, in the console's one scheme (support.admin.crumbs)."""
    return {"crumbs": page_crumbs(context)}
