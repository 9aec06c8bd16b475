from django.core.management.base import BaseCommand, CommandError

from provisioning.models import SandboxMode
from provisioning.sandbox import PROVIDERS, sandbox_set, sandbox_switches


class Command(BaseCommand):
    help = ("Show or switch the sandbox providers' failure modes. "
            "Example: sandbox provisioning error; sandbox email flaky --failures 3; sandbox all ok.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("provider", nargs="?", choices=[*PROVIDERS, "all"])
        parser.add_argument("mode", nargs="?", choices=SandboxMode.values)
        parser.add_argument("--failures", type=int, default=3,
                            help="for 'flaky': how many calls fail before it succeeds (default 3)")

    def handle(self, *args, provider=None, mode=None, failures=3, **options) -> None:
        if provider and not mode:
            raise CommandError(f"Say which mode: {', '.join(SandboxMode.values)}.")
        if provider:
            for name in PROVIDERS if provider == "all" else [provider]:
                sandbox_set(provider=name, mode=mode, failures=failures if mode == SandboxMode.FLAKY else 0)
        for switch in sandbox_switches():
            extra = f" ({switch.failures_left} failures left)" if switch.mode == SandboxMode.FLAKY else ""
            self.stdout.write(f"{switch.provider:<13} {switch.mode:<8} {switch.get_mode_display()}{extra}"
                              f" — {switch.calls} calls so far")
