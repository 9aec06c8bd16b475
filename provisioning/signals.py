"""Events the provisioning layer announces. Upper layers (accounts, support) listen;
this app never imports them (DESIGN: lower layers announce, upper layers react)."""
from django.dispatch import Signal

# A step ran out of automatic attempts or was refused for good.
# Sent with: kind (str), step, account_id.
step_exhausted = Signal()
# An account's workspace now exists. Sent with: account_id, workspace, waited (bool:
# the person saw at least one failure first).
workspace_ready = Signal()
# A provider's circuit opened (an outage began) or closed. Sent with: provider.
breaker_opened = Signal()
breaker_closed = Signal()
