"""One signup in a process configured like production (``config.settings``: the ORM
broker, tasks queued for a worker rather than run inline), for the tests that count
what a signup writes (``test_signup_writes.py``)::

    python -m accounts.tests.signup_process EMAIL
        posts the signup form once, as a browser behind our TLS proxy would, and
        prints one JSON object: the answer's status and Location, and every SQL
        statement the request ran, BEGIN and COMMIT included, in order.
"""
from __future__ import annotations

import json
import sys


def main(email: str) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    browser = Client(HTTP_HOST="localhost", HTTP_X_FORWARDED_PROTO="https")
    data = {"name": "Ada Lovelace", "email": email, "phone": "+1 415 555 0100",
            "company": "Analytical Engines", "password": "correct horse battery staple"}
    with CaptureQueriesContext(connection) as queries:
        answer = browser.post("/signup/", data, secure=True)
    print(json.dumps({"status": answer.status_code, "location": answer.get("Location"),
                      "statements": [query["sql"] for query in queries.captured_queries]}))


if __name__ == "__main__":
    main(sys.argv[1])
