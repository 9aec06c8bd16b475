"""Database sessions (``SESSION_ENGINE``) that write a new login once.

Django's database store writes a fresh session at login three times over: it checks
that a random key is unused (a query), inserts the empty session under it at once
(``cycle_key``), and updates it with the login at the end of the request. Signup
logs every new person in, so that is on the path of every signup. Here a session
with nothing stored behind it yet gets one INSERT, at the end of the request, and no
key check: the INSERT itself refuses a taken key (the primary key), and Django's
``create`` then draws another, as it does after a lost race today.

That INSERT does not wait for the disk (``provisioning.transactions``): a crash of
the database itself in the moments after a login can forget the session, and the
person logs in again. Everything else a session does still waits: its updates, and
above all its deletion at logout, so a session that was ended stays ended.

What stays Django's: the row in ``django_session`` (so logout deletes it and the
session ends everywhere, and closing an account ends it on the next request), the
rotation of a stored session's key at login (a planted session is worth nothing: a
stored one is replaced and deleted; an unknown key is forgotten when it is loaded, so
the new session never takes it), expiry, and the cookie.
"""
from __future__ import annotations

from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import IntegrityError, connection
from django.utils.crypto import get_random_string

from provisioning.transactions import execute_without_waiting_for_disk


class SessionStore(DatabaseSessionStore):
    def cycle_key(self) -> None:
        self._get_session()  # loading forgets a key with no session behind it
        if self.session_key is None:
            # Nothing stored to rotate away from: the key is drawn when the session
            # is first saved, at the end of the request, in the one INSERT.
            self.modified = True
            return
        super().cycle_key()

    async def acycle_key(self) -> None:
        await self._aget_session()
        if self.session_key is None:
            self.modified = True
            return
        await super().acycle_key()

    def save(self, must_create: bool = False) -> None:
        if not must_create or self.session_key is None:
            return super().save(must_create)
        # Django's save of a new row as one INSERT that is a transaction of its own,
        # sent in one round trip and committed without waiting for the disk (Django's
        # would open a transaction around it: BEGIN, SET and COMMIT, three more).
        row = self.create_model_instance(self._get_session(no_load=True))
        qn = connection.ops.quote_name
        columns = [self.model._meta.get_field(name) for name in ("session_key", "session_data", "expire_date")]
        try:
            execute_without_waiting_for_disk(  # table and column names are Django's; values are parameters
                f"INSERT INTO {qn(self.model._meta.db_table)} ({', '.join(qn(c.column) for c in columns)}) "
                f"VALUES (%s, %s, %s)",
                [column.get_db_prep_save(getattr(row, column.attname), connection) for column in columns])
        except IntegrityError:
            raise CreateError from None  # the key is taken: create() draws another

    def _get_new_session_key(self) -> str:
        # 32 characters from 36 (165 bits): a clash is never expected, and the
        # INSERT's primary key catches one (save(must_create=True) raises CreateError
        # and create() draws again), so no query asks first.
        return get_random_string(32, VALID_KEY_CHARS)

    async def _aget_new_session_key(self) -> str:
        return self._get_new_session_key()
