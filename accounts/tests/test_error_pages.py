"""400, 404 and 500 pages in the product's voice; 500 renders with no database at all.
(503 when the database is down is tested over real HTTP in config/tests.)"""
from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from accounts import messages as words
from accounts.error_views import server_error


@pytest.mark.django_db
def test_missing_page_says_where_to_go(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    text = response.content.decode()
    assert str(words.NOT_FOUND.title).replace("'", "&#x27;") in text
    assert 'href="/login/"' in text and 'href="/signup/"' in text and 'href="/help/"' in text


def test_server_error_page_needs_no_database_and_no_request_context(settings):
    """No django_db mark: any database access here would raise."""
    settings.SUPPORT_EMAIL = "help@acme.test"
    response = server_error(RequestFactory().get("/signup/"))
    assert response.status_code == 500
    text = response.content.decode()
    assert "Something broke on our side" in text
    assert "signing up again is safe" in text
    assert '<a href="mailto:help@acme.test">help@acme.test</a>' in text
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/signup/", "/login/", "/help/"])
def test_a_form_in_another_encoding_gets_our_400_page_not_a_500(path, settings):
    """Django refuses a urlencoded body that is not UTF-8 when the CSRF check reads
    it; its default 400 view reads the body again and became a 500."""
    settings.SUPPORT_EMAIL = "help@acme.test"
    browser = Client(enforce_csrf_checks=True)
    browser.get(path)  # the CSRF cookie, as a browser holds it: the check then reads the body
    response = browser.post(path, data="email=ada%E9%40example.com&password=x",
                            content_type="application/x-www-form-urlencoded; charset=latin-1")
    assert response.status_code == 400
    text = response.content.decode()
    assert "We couldn&#x27;t read what your browser sent" in text
    assert "nothing in it was saved or changed" in text
    assert f'href="{path}"' in text  # reload the form
    assert '<a href="mailto:help@acme.test">help@acme.test</a>' in text
    assert "no-store" in response["Cache-Control"]
