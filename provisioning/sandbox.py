"""The sandbox providers' switchboard: how demos and tests inject failures without
touching code. Both sandbox backends (workspace provisioning and email) ask it what
to do on each call."""
from __future__ import annotations

from django.db import transaction
from django.db.models import F

from provisioning.models import SandboxMode, SandboxSwitch

PROVIDERS = ("provisioning", "email")


def sandbox_set(*, provider: str, mode: str, failures: int = 0) -> SandboxSwitch:
    """Switch a sandbox provider's mode ("flaky" fails ``failures`` times first)."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown sandbox provider {provider!r}; choose from {', '.join(PROVIDERS)}")
    if mode not in SandboxMode.values:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(SandboxMode.values)}")
    switch, _ = SandboxSwitch.objects.update_or_create(
        provider=provider, defaults={"mode": mode, "failures_left": failures})
    return switch


def sandbox_switches() -> list[SandboxSwitch]:
    existing = {s.provider: s for s in SandboxSwitch.objects.all()}
    return [existing.get(p) or SandboxSwitch(provider=p) for p in PROVIDERS]


def sandbox_outcome(provider: str) -> str:
    """Count a call and decide its fate: the switch's mode (a ``SandboxMode``: "ok",
    "timeout", "error", "late", "reject", "refuse_message", ...), which each sandbox
    backend turns into its provider's answer. "flaky" answers "error" while failures
    are left, then "ok"."""
    with transaction.atomic():
        switch, _ = SandboxSwitch.objects.select_for_update().get_or_create(provider=provider)
        SandboxSwitch.objects.filter(pk=provider).update(calls=F("calls") + 1)
        if switch.mode != SandboxMode.FLAKY:
            return switch.mode
        if switch.failures_left > 0:
            SandboxSwitch.objects.filter(pk=provider).update(failures_left=F("failures_left") - 1)
            return SandboxMode.ERROR
        return SandboxMode.OK
