"""Values every person-facing template may need."""
from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest


def support_contact(request: HttpRequest) -> dict[str, str]:
    """How to reach a person: SUPPORT_EMAIL, and SUPPORT_PHONE when it is published
    (empty: no page says "call us"), with a ``tel:`` link that keeps only its digits
    and the leading +."""
    phone = settings.SUPPORT_PHONE
    return {
        "support_email": settings.SUPPORT_EMAIL,
        "support_phone": phone,
        "support_phone_href": "tel:" + re.sub(r"[^\d+]", "", phone) if phone else "",
    }
