"""Events the accounts layer announces. The support app listens; this app never
imports it (DESIGN: lower layers announce, upper layers react)."""
from django.dispatch import Signal

# Staff closed an account (``accounts.services.account_close``); sent on commit.
# Sent with: account_id, actor (str), reason (str).
account_closed = Signal()
