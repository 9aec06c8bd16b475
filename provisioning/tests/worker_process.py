"""A real worker process for the crash tests (``test_crashes.py``), configured from
its environment like production (``config.settings``)::

    python -m provisioning.tests.worker_process run KIND PK [PK ...]
        prints "ready", waits for a line on stdin (a start barrier), then runs
        provisioning.durable.step_run(KIND, PK) for each PK in order and prints one
        JSON line per step: {"pk": 5, "result": "succeeded"}

    python -m provisioning.tests.worker_process signup-then-die EMAIL
        registers an account and is killed (SIGKILL) right after the transaction
        commits, before any callback runs: on Redis, before anything is enqueued
        (the crash DESIGN's reconciler survives); on the ORM broker, with the tasks
        committed in that transaction.

    python -m provisioning.tests.worker_process signup-dies-before-commit EMAIL
        registers an account and is killed (SIGKILL) with everything written and
        the transaction not yet committed.
"""
from __future__ import annotations

import json
import os
import signal
import sys


def run(kind: str, pks: list[int]) -> None:
    from provisioning.durable import step_run

    print("ready", flush=True)
    sys.stdin.readline()
    for pk in pks:
        print(json.dumps({"pk": pk, "result": step_run(kind, pk)}), flush=True)


def signup_then_die(email: str) -> None:
    from django.db import transaction

    from accounts.services import account_register

    with transaction.atomic():
        # Registered first, so it runs first when the transaction commits: the
        # process dies with the rows committed and the enqueue callbacks not run.
        transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
        account_register(name="Ada Lovelace", email=email, company="Analytical Engines",
                         password="correct horse battery staple")


def signup_dies_before_commit(email: str) -> None:
    from django.db import transaction

    from accounts.services import account_register

    with transaction.atomic():
        account_register(name="Ada Lovelace", email=email, company="Analytical Engines",
                         password="correct horse battery staple")
        os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    import django

    django.setup()
    command, *args = argv
    if command == "run":
        run(args[0], [int(pk) for pk in args[1:]])
    elif command == "signup-then-die":
        signup_then_die(args[0])
    elif command == "signup-dies-before-commit":
        signup_dies_before_commit(args[0])
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
