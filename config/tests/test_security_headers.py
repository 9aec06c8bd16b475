"""Every response carries a strict Content-Security-Policy and a Permissions-Policy:
no inline script, only our own origin; the pages that run script still work under
it (the browser tests run the status page and the console with these headers)."""
from __future__ import annotations

import re

import pytest
from django.test import Client


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


@pytest.mark.parametrize("path", ["/signup/", "/login/", "/help/", "/admin/login/", "/setup/status.json"])
def test_pages_forbid_inline_script_and_foreign_origins(db, path):
    response = Client().get(path)
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]


@pytest.mark.django_db
def test_the_status_page_has_no_inline_script(client, signup_data):
    client.post("/signup/", signup_data)
    page = client.get("/setup/").content.decode()
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts
    for attributes in scripts:
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
