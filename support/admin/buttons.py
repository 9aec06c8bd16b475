"""The ticket page's buttons: what each is called, which permission it needs, when it
applies, its confirmation form and the one service it calls.

Every button is a custom admin URL: GET shows a confirmation page (with a fresh
click key), POST does the work. The admin view checks the permission, calls the
service, and writes the admin log; the service writes the ticket timeline."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from support import services
from support.forms import ButtonForm, CorrectEmailForm, MarkVerifiedForm, ReplyForm
from support.models import TicketStatus
from support.selectors import TicketDetail


@dataclass(frozen=True)
class Button:
    name: str
    permission: str  # codename on support.Ticket
    form: type[ButtonForm]
    applies: Callable[[TicketDetail], bool]
    call: Callable[..., services.ActionResult]  # (ticket=, actor=, action_key=, **form data)
    primary: bool = False

    @property
    def perm(self) -> str:
        return f"support.{self.permission}"


def _unverified(d: TicketDetail) -> bool:
    return d.ticket.account is not None and not d.ticket.account.email_verified


def _workspace_not_ready(d: TicketDetail) -> bool:
    return d.overview is not None and d.overview.workspace_status != "ready"


def _can_get_code(d: TicketDetail) -> bool:
    account = d.ticket.account
    return account is not None and account.is_active and not account.is_staff


BUTTONS: dict[str, Button] = {button.name: button for button in [
    Button("rerun", "rerun_provisioning", ButtonForm, _workspace_not_ready,
           lambda **kw: services.ticket_rerun_provisioning(**kw), primary=True),
    Button("resend", "resend_verification", ButtonForm, _unverified,
           lambda **kw: services.ticket_resend_verification(**kw)),
    Button("correct_email", "correct_email", CorrectEmailForm, _unverified,
           lambda *, email, **kw: services.ticket_correct_email(email=email, **kw)),
    Button("mark_verified", "mark_verified", MarkVerifiedForm, _unverified,
           lambda *, confirmed, **kw: services.ticket_mark_verified(**kw)),
    Button("signin_code", "issue_signin_code", ButtonForm, _can_get_code,
           lambda **kw: services.ticket_issue_signin_code(**kw)),
    Button("reply", "reply", ReplyForm, lambda d: True,
           lambda *, body, then, **kw: services.ticket_reply(body=body, then=then, **kw)),
    Button("resolve", "resolve", ButtonForm, lambda d: d.ticket.status != TicketStatus.RESOLVED,
           lambda **kw: services.ticket_resolve_button(**kw)),
]}
