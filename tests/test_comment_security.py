"""CSRF (F01), double submit (D01) and the production settings audit (C01)."""

import os
import secrets
import subprocess
import sys
import threading

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from broadsheet.comments.models import Comment

POST = reverse("comments:post")


def _token_for(client: Client) -> str:
    return client.get(reverse("comments:session")).json()["csrf_token"]


# --- F01: cross-site form POST -----------------------------------------------------------------


def test_cross_site_post_for_a_signed_in_reader_is_forbidden(
    thread_factory, comment_data, user_factory
):
    thread = thread_factory()
    victim = Client(enforce_csrf_checks=True)
    victim.force_login(user_factory())
    response = victim.post(
        POST,
        comment_data(thread, comment="Forged."),
        HTTP_ORIGIN="http://evil.test",
        HTTP_SEC_FETCH_SITE="cross-site",
    )
    assert response.status_code == 403
    assert Comment.objects.count() == 0
    assert b"Forged." not in response.content


def test_cross_site_post_with_only_an_origin_header_is_forbidden(thread_factory, comment_data):
    thread = thread_factory()
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(
        POST, comment_data(thread, comment="Forged."), HTTP_ORIGIN="http://evil.test"
    )
    assert response.status_code == 403
    assert response.content == b"Forbidden: comments can only be posted from this site."
    assert Comment.objects.count() == 0


def test_post_from_a_trusted_origin_without_token_gets_the_confirmation_page(
    thread_factory, comment_data, settings
):
    settings.CSRF_TRUSTED_ORIGINS = ["https://news.example.org"]
    thread = thread_factory()
    response = Client(enforce_csrf_checks=True).post(
        POST, comment_data(thread, comment="Kept."), HTTP_ORIGIN="https://news.example.org"
    )
    assert response.status_code == 403
    assert "Kept.</textarea>" in response.content.decode()


def test_post_without_token_or_cookie_stores_nothing_and_asks_to_confirm(
    thread_factory, comment_data
):
    thread = thread_factory()
    curl = Client(enforce_csrf_checks=True)
    response = curl.post(POST, comment_data(thread, comment="Typed without JavaScript."))
    body = response.content.decode()
    assert response.status_code == 403
    assert Comment.objects.count() == 0
    assert "Typed without JavaScript.</textarea>" in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert "press “Post Comment” again" in body


def test_confirmed_post_after_the_token_page_is_stored(thread_factory, comment_data):
    thread = thread_factory()
    browser = Client(enforce_csrf_checks=True)
    first = browser.post(POST, comment_data(thread))
    token = first.content.decode().split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    second = browser.post(POST, comment_data(thread, csrfmiddlewaretoken=token))
    assert second.status_code == 303
    assert Comment.objects.count() == 1


def test_post_with_the_session_endpoint_token_is_stored(thread_factory, comment_data):
    thread = thread_factory()
    browser = Client(enforce_csrf_checks=True)
    token = _token_for(browser)
    response = browser.post(
        POST, comment_data(thread, csrfmiddlewaretoken=token), HTTP_ORIGIN="http://testserver"
    )
    assert response.status_code == 303
    assert Comment.objects.count() == 1


def test_token_from_another_browser_is_refused(thread_factory, comment_data):
    thread = thread_factory()
    attacker, victim = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    stolen = _token_for(attacker)
    _token_for(victim)
    response = victim.post(POST, comment_data(thread, csrfmiddlewaretoken=stolen))
    assert response.status_code == 403
    assert Comment.objects.count() == 0


# --- D01: double submit ------------------------------------------------------------------------


def test_same_form_sent_twice_makes_one_comment_and_the_same_redirect(
    client, thread_factory, comment_data
):
    thread = thread_factory()
    data = comment_data(thread, submission_key=secrets.token_hex(16))
    first, second = client.post(POST, data), client.post(POST, data)
    assert Comment.objects.count() == 1
    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"]


def test_resubmitting_the_same_form_from_the_same_browser_is_one_comment(
    thread_factory, comment_data
):
    thread = thread_factory()
    browser = Client(enforce_csrf_checks=True)
    session = browser.get(reverse("comments:session")).json()  # what comments.js fetches
    data = comment_data(
        thread, csrfmiddlewaretoken=session["csrf_token"], submission_key=session["submission_key"]
    )
    first = browser.post(POST, data)
    second = browser.post(POST, data)  # browser back + resubmit
    assert Comment.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_another_browser_replaying_a_form_key_gets_its_own_comment_not_the_first(
    thread_factory, comment_data
):
    thread = thread_factory()
    author, replayer = Client(), Client()
    key = author.get(reverse("comments:session")).json()["submission_key"]
    replayer.get(reverse("comments:session"))
    data = comment_data(thread, submission_key=key)
    first = author.post(POST, data)
    second = replayer.post(POST, {**data, "author": "Someone Else", "email": "else@example.org"})
    assert Comment.objects.count() == 2
    assert first["Location"] != second["Location"]
    remembered = replayer.get(reverse("comments:session")).json()["guest"]
    assert remembered["email"] == "else@example.org"


def test_two_different_forms_with_the_same_text_from_two_readers_are_two_comments(
    thread_factory, comment_data
):
    thread = thread_factory()
    for _ in range(2):
        Client().post(POST, comment_data(thread, submission_key=secrets.token_hex(16)))
    assert Comment.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_parallel_identical_posts_make_exactly_one_comment(thread_factory, comment_data):
    thread = thread_factory()
    page = Client()  # one first-time commenter's browser, clicking "Post Comment" 4 times
    session = page.get(reverse("comments:session")).json()
    data = comment_data(thread, submission_key=session["submission_key"])
    barrier = threading.Barrier(4)
    responses = []

    def send():
        client = Client()
        client.cookies = page.cookies
        barrier.wait()
        responses.append(client.post(POST, data))
        connections.close_all()

    workers = [threading.Thread(target=send) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [r.status_code for r in responses] == [303] * 4
    assert len({r["Location"] for r in responses}) == 1
    assert Comment.objects.count() == 1


# --- C01: production settings audit ------------------------------------------------------------


def test_production_settings_pass_the_deploy_check(tmp_path):
    env = {
        **os.environ,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "BROADSHEET_HTTPS": "1",
        "ALLOWED_HOSTS": "news.example.org",
        "BROADSHEET_BASE_URL": "https://news.example.org",
        "BROADSHEET_VAR_DIR": str(tmp_path),
        "REDIS_URL": "redis://127.0.0.1:6379/0",  # not contacted by the check
        "DEBUG": "0",
    }
    for name in ("BROADSHEET_PLAIN_STATIC", "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)

    def deploy_check(env):
        return subprocess.run(
            [sys.executable, "-m", "broadsheet.cli", "check", "--deploy"]
            + ["--fail-level", "WARNING"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    result = deploy_check(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    # Two worker processes with a per-process cache: the comment rate limits would not hold.
    result = deploy_check({k: v for k, v in env.items() if k != "REDIS_URL"})
    assert result.returncode != 0
    assert "broadsheet.W001" in result.stdout + result.stderr
