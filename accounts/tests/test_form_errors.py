"""Form errors on every person-facing form: the page title starts with "Error: ", a
summary that takes focus (tabindex -1, focused by static/js/forms.js) links to each
field in error, and each such field is marked aria-invalid and described by its
error message."""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from django.test import Client

from accounts.models import User


class Elements(HTMLParser):
    """Every element's attributes, by id, and the error summary's links."""

    def __init__(self, page: str):
        super().__init__()
        self.by_id: dict[str, dict] = {}
        self.summaries: list[dict] = []
        self.summary_links: list[str] = []
        self._in_summary = 0
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs) | {"tag": tag}
        if "id" in attrs:
            self.by_id[attrs["id"]] = attrs
        if "data-error-summary" in attrs:
            self.summaries.append(attrs)
            self._in_summary = 1
        elif self._in_summary and tag == "div":
            self._in_summary += 1
        if self._in_summary and tag == "a":
            self.summary_links.append(attrs.get("href", ""))

    def handle_endtag(self, tag):
        if self._in_summary and tag == "div":
            self._in_summary -= 1


def logged_in(signup_data) -> Client:
    client = Client()
    client.post("/signup/", signup_data)
    return client


# (where, what to post, the fields that must be in error)
FORMS = [
    ("/signup/", {"email": "not an address", "phone": "nope"}, ["name", "email", "phone", "company", "password"]),
    ("/login/", {"email": "ada@"}, ["email", "password"]),
    ("/login/code/", {"email": "", "code": ""}, ["email", "code"]),
    ("/password-reset/", {"email": "nope"}, ["email"]),
    ("/help/", {"email": "nope", "message": ""}, ["email", "message"]),
    ("/help/call/", {"email": "", "phone": "call me"}, ["email", "phone"]),
]


def check(page: str, fields: list[str], *, id_prefix: str = "id_") -> None:
    title = re.search(r"<title>(.*?)</title>", page, flags=re.S).group(1)
    assert title.startswith("Error: "), title
    found = Elements(page)
    [summary] = found.summaries
    assert summary["tabindex"] == "-1" and summary["role"] == "alert"
    for name in fields:
        field_id = f"{id_prefix}{name}"
        assert f"#{field_id}" in found.summary_links, f"the summary does not link to {name}"
        control = found.by_id[field_id]
        assert control.get("aria-invalid") == "true", name
        described = [found.by_id.get(ref, {}) for ref in control.get("aria-describedby", "").split()]
        assert any("errorlist" in ref.get("class", "") for ref in described), f"{name} is not described by its error"


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "data", "fields"), FORMS, ids=[f[0] for f in FORMS])
def test_an_invalid_submit_marks_the_title_the_summary_and_each_field(path, data, fields):
    response = Client().post(path, data)
    assert response.status_code == 400
    check(html.unescape(response.content.decode()), fields,
          id_prefix="callback_" if path == "/help/call/" else "id_")


@pytest.mark.django_db
def test_a_wrong_password_is_summarised_without_pointing_at_a_field(signup_data):
    Client().post("/signup/", signup_data)
    page = html.unescape(Client().post("/login/", {"email": "ada@example.com", "password": "wrong guess 123"})
                         .content.decode())
    assert re.search(r"<title>Error: ", page)
    found = Elements(page)
    [summary] = found.summaries
    assert found.summary_links == []
    assert "don't match an account" in page


@pytest.mark.django_db
def test_the_status_pages_address_form_has_the_same_summary(signup_data):
    client = logged_in(signup_data)
    page = html.unescape(client.post("/setup/email/", {"email": "nope"}).content.decode())
    check(page, ["email"])


@pytest.mark.django_db
def test_a_page_without_errors_keeps_its_title_and_has_no_summary(signup_data):
    for path in ("/signup/", "/login/", "/help/", "/help/call/"):
        page = Client().get(path).content.decode()
        assert "<title>Error" not in page and "data-error-summary" not in page
    assert User.objects.count() == 0
