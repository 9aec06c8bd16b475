"""Fixtures for the accounts tests."""
from __future__ import annotations

import pytest
from django.db import connection


@pytest.fixture(autouse=True)
def _postgres_only(request):
    """Tests marked ``postgres`` prove concurrency, locking and constraints, which only
    PostgreSQL shows truly (SQLite serialises every writer); CI runs the suite on both."""
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL=postgres://...); SQLite serialises writers")
