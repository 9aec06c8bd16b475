"""Replay the stranded-signup story end to end against the sandbox providers.

Every step goes through the real pages (Django's test client, in-process) and the
real services; the worker's part runs in-process too. Time is compressed (retries
become due at once) so the story takes seconds. Exits non-zero the moment a step is
not as described.
"""
from __future__ import annotations

import re
import time

from django.conf import settings
from django.core import mail
from django.core.management.base import BaseCommand, CommandError
from django.test import Client, override_settings

from accounts.messages import EMAIL_SUBJECTS
from accounts.models import User
from accounts.selectors import account_overview, user_by_email
from accounts.services import account_resume
from provisioning.durable import step_run
from provisioning.models import Workspace
from provisioning.reconciler import reconcile
from provisioning.sandbox import sandbox_set

PASSWORD = "a long demo password 42"


def _run_worker(passes: int = 10) -> None:
    """What the scheduled dispatcher and the workers would do over a few minutes."""
    for _ in range(passes):
        if not any(reconcile(enqueue=step_run).dispatched.values()):
            return


class Command(BaseCommand):
    help = "Replay the stranded-signup story on the sandbox providers and check every step."

    def handle(self, *args, **options) -> None:
        if settings.PROVISIONING_BACKEND != "sandbox" or "Sandbox" not in settings.EMAIL_BACKEND:
            raise CommandError("demo_outage needs the sandbox providers (the default settings).")
        self.step_no = 0
        with override_settings(RETRY_BASE_SECONDS=0, ALLOWED_HOSTS=["testserver"],
                               SANDBOX_EMAIL_DELIVER_TO="django.core.mail.backends.locmem.EmailBackend"):
            mail.outbox = []
            try:
                self._story()
            finally:
                for provider in ("provisioning", "email"):
                    sandbox_set(provider=provider, mode="ok")
        self.stdout.write(self.style.SUCCESS("\nThe story holds: nobody was stranded."))

    def _check(self, what: str, ok: bool, detail: str = "") -> None:
        self.step_no += 1
        mark = self.style.SUCCESS("ok  ") if ok else self.style.ERROR("FAIL")
        self.stdout.write(f"{mark} {self.step_no:>2}. {what}" + (f"\n         {detail}" if detail else ""))
        if not ok:
            raise CommandError(f"Step {self.step_no} is not as described: {what}")

    def _story(self) -> None:
        email = f"demo-{int(time.time() * 1000)}@example.com"
        form = {"name": "Dana Demo", "email": email, "phone": "+1 415 555 0100",
                "company": "Demo Widgets", "password": PASSWORD}
        person = Client(secure=True)

        self.stdout.write("Both providers go down: the email provider times out, provisioning answers 503.")
        sandbox_set(provider="email", mode="timeout")
        sandbox_set(provider="provisioning", mode="error")

        response = person.post("/signup/", form)
        self._check("Signup during the outage answers at once and lands on /setup/",
                    response.status_code == 302 and response["Location"] == "/setup/",
                    f"HTTP {response.status_code} → {response.get('Location')}")
        _run_worker(passes=4)
        account = user_by_email(email=email)
        overview = account_overview(account=account)
        self._check("The account is saved and setup is retrying on its own",
                    overview.state in ("setting_up", "delayed"), f"state {overview.state}: {overview.message}")

        later = Client(secure=True)
        response = later.post("/login/", {"email": email, "password": PASSWORD})
        self._check("Logging in works for the partial account and goes to /setup/",
                    response.status_code == 302 and response["Location"] == "/setup/")
        page = later.get("/setup/").content.decode()
        self._check("The status page tells the truth", "Your account is saved" in page)

        again = Client(secure=True)
        response = again.post("/signup/", form, follow=True)
        self._check("Signing up again with the same password welcomes the person back",
                    "Welcome back" in response.content.decode())
        response = Client(secure=True).post("/signup/", {**form, "password": "someone else's pw 99"})
        self._check("Signing up with another password offers a way forward, never a dead end",
                    "already has an account" in response.content.decode() and response.status_code == 200)

        self.stdout.write("The providers recover; an operator runs retry_setup.")
        sandbox_set(provider="email", mode="ok")
        sandbox_set(provider="provisioning", mode="ok")
        account_resume(account=account, actor="operator (demo)", why="re-run by an operator")
        _run_worker()
        overview = account_overview(account=account)
        self._check("The account heals: its workspace is ready, exactly once",
                    overview.workspace_status == "ready" and Workspace.objects.filter(owner=account).count() == 1,
                    f"state {overview.state}")

        links = [re.search(r"https?://[^/\s]+(/verify/[^\s]+/)", m.body) for m in mail.outbox
                 if email in m.to and m.subject.startswith("Confirm")]
        links = [m.group(1) for m in links if m]
        self._check("The verification email arrived", bool(links))
        opened = later.get(links[-1])
        self._check("Opening the link changes nothing: it shows a confirm button (mail scanners open links)",
                    opened.status_code == 200 and not User.objects.get(pk=account.pk).email_verified)
        response = later.post(links[-1])
        self._check("The button verifies the address and leaves no token in the address bar",
                    response.status_code == 302 and "/verify/" not in response["Location"])
        account.refresh_from_db()
        overview = account_overview(account=account)
        self._check("The account is active", overview.state == "active", overview.message)
        sorry = [m for m in mail.outbox if email in m.to and m.subject == str(EMAIL_SUBJECTS["all_set"])]
        self._check("The person got one 'sorry for the wait' email", len(sorry) == 1)
