"""Commits that need not wait for the disk.

A PostgreSQL commit waits until its WAL is flushed to disk (about a millisecond on
our machine, during which the process that asked is idle): what makes a committed
account survive a database crash. Some writes are worth less than that wait: a rate
limit's count, the queue entry of a step whose durable row already committed (the
reconciler dispatches any step whose entry is lost, DESIGN), a new login's session
row (lost, the person logs in again: ``accounts.sessions``). For those,
``synchronous_commit`` is turned off for that transaction alone: it is still atomic
and visible to everyone at once, and only a crash of the database itself can lose
it, with at most the last few hundred milliseconds of such transactions (three times
``wal_writer_delay``). Never for an account, a step, anything a person was told is
saved, or anything whose loss would undo what someone did (a logout, a closed account).
"""
from __future__ import annotations

from django.db import connection, transaction


def commit_without_waiting_for_disk() -> None:
    """Call inside the ``atomic()`` block whose commit need not wait. Does nothing
    where that block is part of a larger transaction (whose other writes may need
    the wait) or the database is not PostgreSQL."""
    if connection.vendor == "postgresql" and len(connection.atomic_blocks) == 1:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def execute_without_waiting_for_disk(sql: str, params: list) -> tuple | None:
    """Run one write that is a transaction of its own, committed without waiting for
    the disk, in one round trip: in autocommit, ``SET LOCAL`` and the statement go in
    one query string, which PostgreSQL runs as one implicit transaction (a separate
    BEGIN, SET and COMMIT would be three more round trips). Returns the first row of
    its result (a ``RETURNING``), None if it has none. Inside an ``atomic()`` block
    the statement joins that transaction, whose commit keeps its own choice, in a
    savepoint (a refused write leaves the transaction usable); on other databases, or
    with server-side binding (one statement per query), it runs on its own and its
    commit waits."""
    if connection.in_atomic_block:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() if cursor.description else None
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql" or connection.settings_dict["OPTIONS"].get("server_side_binding"):
            cursor.execute(sql, params)
        else:
            cursor.execute("SET LOCAL synchronous_commit TO OFF; " + sql, params)
            cursor.nextset()
        return cursor.fetchone() if cursor.description else None
