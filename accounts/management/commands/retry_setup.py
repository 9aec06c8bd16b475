from django.core.management.base import BaseCommand, CommandError

from accounts.selectors import accounts_with_failed_steps, user_by_email
from accounts.services import account_resume


class Command(BaseCommand):
    help = ("Re-run an account's stopped setup steps now (idempotent): retry_setup EMAIL | --all-failed "
            "[--code CODE].")

    def add_arguments(self, parser) -> None:
        parser.add_argument("email", nargs="?")
        parser.add_argument("--all-failed", action="store_true")
        parser.add_argument("--code", help="with --all-failed: only steps stopped with this error code "
                                           "(e.g. http_422), to re-run all after a refusal that was ours")

    def handle(self, *args, email=None, all_failed=False, code=None, **options) -> None:
        if bool(email) == all_failed:
            raise CommandError("Give one EMAIL, or --all-failed.")
        if code and not all_failed:
            raise CommandError("--code goes with --all-failed.")
        if email:
            account = user_by_email(email=email)
            if account is None:
                raise CommandError(f"No account uses {email}.")
            accounts = [account]
        else:
            accounts = accounts_with_failed_steps(code=code)
        for account in accounts:
            resumed = account_resume(account=account, actor="operator (manage.py retry_setup)",
                                     why="re-run by an operator")
            self.stdout.write(f"{account.email}: {', '.join(resumed) or 'nothing to retry'}")
        if not accounts:
            self.stdout.write("No account has a failed step.")
