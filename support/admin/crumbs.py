"""The console's breadcrumbs: one scheme on every page, ``Today › section › page``.

Every console page, ours or one of Django's admin pages (lists, password change,
history, sign-in steps), renders them through one template tag
(``{% console_crumbs %}`` in ``admin/base_site.html``, support.templatetags.console),
which reads them from the page's context: a page that knows better passes its own
``crumbs`` (the ticket page, a button's confirmation page); any other page gets
them derived from what Django's admin already puts in its context (``opts`` for the
section, ``cl`` on a list, ``original``/``object`` for the object, ``title``).
Django's own "Home ›" breadcrumbs are never rendered."""
from __future__ import annotations

from django.db.models import Model
from django.db.models.options import Options
from django.urls import NoReverseMatch, reverse
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

Crumb = tuple[str, str]  # (label, link); the page itself has no link

TODAY = _("Today")
# The console's sections, named as its navigation names them (base_site.html).
SECTIONS = {"support.ticket": _("Queue"), "accounts.user": _("Accounts"), "support.incident": _("Incidents")}


def today() -> Crumb:
    return (str(TODAY), reverse("admin:index"))


def section_crumbs(opts: Options) -> list[Crumb]:
    """Today, then the list the model's pages belong to (the Queue for tickets)."""
    label = SECTIONS.get(opts.label_lower) or capfirst(opts.verbose_name_plural)
    return [today(), (str(label), _admin_url(f"{opts.app_label}_{opts.model_name}_changelist"))]


def page_crumbs(context) -> list[Crumb]:
    """The breadcrumbs of the page being rendered: its own ``crumbs`` if it passes
    them, else derived from Django's admin context. The last crumb is the page
    itself, unlinked."""
    if context.get("crumbs"):
        return list(context["crumbs"])
    match = getattr(context.get("request"), "resolver_match", None)
    if match is not None and match.view_name == "admin:index":
        return [(str(TODAY), "")]
    crumbs = [today()]
    opts = context.get("opts")
    if opts is not None:
        crumbs = section_crumbs(opts)
        if context.get("cl") is not None:  # the list itself
            return [*crumbs[:-1], (crumbs[-1][0], "")]
        thing = context.get("original") or context.get("object")
        if isinstance(thing, Model) and thing.pk is not None:
            crumbs.append((str(thing), _admin_url(f"{opts.app_label}_{opts.model_name}_change", thing.pk)))
    elif context.get("app_label") and context.get("app_list"):  # an app's page of models
        return [*crumbs, (str(context["app_list"][0]["name"]), "")]
    title = context.get("title")
    if title and str(title) != crumbs[-1][0]:
        crumbs.append((str(title), ""))
    return [*crumbs[:-1], (crumbs[-1][0], "")]


def _admin_url(name: str, *args) -> str:
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:  # a model without that page: the crumb is only a label
        return ""
