from django.core.management.base import BaseCommand, CommandError

from accounts.selectors import account_deliveries, account_overview, account_timeline, user_by_email


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z") if value else "-"


class Command(BaseCommand):
    help = "Where an account stands and why: state, steps, emails and timeline."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")

    def handle(self, *args, email: str, **options) -> None:
        account = user_by_email(email=email)
        if account is None:
            raise CommandError(f"No account uses {email}.")
        overview = account_overview(account=account)
        out = self.stdout.write
        out(f"{account.email}  ({account.name}, {account.company}, {account.phone or 'no phone'})")
        out(f"state:     {overview.state}")
        out(f"message:   {overview.message}")
        out(f"ticket:    {overview.ticket or '-'}")
        request = overview.request
        if request:
            out(f"workspace: {overview.workspace_status} (step {request.status}, {request.attempts} attempts, "
                f"{request.counted_attempts} counted, next {_when(request.next_attempt_at)})")
            if request.last_error_code:
                out(f"           last error: {request.last_error_code}: {request.last_error_detail}")
        out(f"email:     {'verified' if account.email_verified else 'unverified'}, "
            f"delivery {overview.delivery_status}")
        out("emails:")
        for d in account_deliveries(account=account):
            error = f" — {d.last_error_code}: {d.last_error_detail}" if d.last_error_code else ""
            out(f"  {_when(d.created_at)}  {d.kind:<15} {d.status:<9} {d.attempts} attempts, "
                f"next {_when(d.next_attempt_at)}{error}")
        out("timeline:")
        for e in account_timeline(account=account):
            move = f"{e.from_state or '·'} → {e.to_state}" if e.to_state else ""
            out(f"  {_when(e.created_at)}  {e.subject:<9} {move:<24} {e.why}  [{e.actor}]")
