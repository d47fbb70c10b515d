"""Site accounts (allauth) as a reader meets them: the pages, the mail that arrives over real
SMTP on loopback, the session cookie, and the limits on guessing passwords."""

from __future__ import annotations

import os
import re
import statistics
import time
from urllib.parse import urlsplit

import pytest
from allauth.account.models import EmailAddress
from bs4 import BeautifulSoup
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client

from tests.mailbox import Mailbox

PASSWORD = "correct horse 42"
SITE = settings.WAGTAIL_SITE_NAME
# Links in mail are on the site's canonical address, never the request's Host ("testserver").
BASE_URL = "https://news.example.test"
LINK = re.compile(r"https://news\.example\.test(/\S+)")


class QuickPBKDF2(PBKDF2PasswordHasher):
    """The production algorithm with fewer rounds: the suite stays fast, and a sign-in still
    costs one real hash, which is what the timing test compares."""

    iterations = 20_000


class TimingPBKDF2(PBKDF2PasswordHasher):
    """Enough rounds that a hash dominates a failed sign-in (as the production 1,000,000 do), so
    a sign-in that skipped it for unknown addresses would stand out; few enough for 60 runs."""

    iterations = 200_000


@pytest.fixture(autouse=True)
def fresh_limits(settings):
    # allauth counts attempts in the cache (locmem here): each test starts with none.
    settings.PASSWORD_HASHERS = [
        "tests.identity.test_accounts.QuickPBKDF2",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    settings.BROADSHEET_BASE_URL = BASE_URL
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def reader(user_factory):
    """A reader with a confirmed address, as if they had signed up earlier."""

    def make(email="ana@example.org", username="ana", password=PASSWORD):
        user = user_factory(username=username, email=email, password=password)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        return user

    return make


def text(response) -> str:
    """What a person reads in the page's main area, whitespace collapsed."""
    soup = BeautifulSoup(response.content, "html.parser")
    main = soup.find("main") or soup
    return " ".join(main.get_text(" ").split())


def session_user(client) -> dict | None:
    """Who the site thinks this browser is (the comment form asks the same endpoint)."""
    response = client.get("/comments/session/")
    assert response.status_code == 200
    return response.json()["user"]


def log_in(client, email, password=PASSWORD, **kwargs):
    return client.post("/accounts/login/", {"login": email, "password": password}, **kwargs)


def link_in(message) -> str:
    [url] = LINK.findall(Mailbox.body(message))
    return urlsplit(url).path


# --- Sign up, confirm by mail, log in ----------------------------------------------------------


@pytest.mark.django_db
def test_sign_up_confirm_by_mail_then_log_in(client, smtp_mailbox):
    page = client.get("/accounts/signup/")
    assert page.status_code == 200
    assert "Create your account" in text(page)
    assert "Your name on comments" in text(page)

    response = client.post(
        "/accounts/signup/",
        {
            "email": "Maria@Example.org",
            "username": "maria_l",
            "password1": "a long walk to Lisbon",
            "password2": "a long walk to Lisbon",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/accounts/confirm-email/"
    assert "Check your email" in text(response)
    assert "spam" in text(response)

    [message] = smtp_mailbox.wait_for(1)
    assert smtp_mailbox.envelopes[0][1] == ["maria@example.org"]
    assert message["To"] == "maria@example.org"
    assert message["Subject"] == f"[{SITE}] Confirm your email address"
    assert f"Hello from {SITE}!" in Mailbox.body(message)
    confirm_path = link_in(message)
    assert confirm_path.startswith("/accounts/confirm-email/")

    # Not confirmed yet: the password alone does not log in.
    response = log_in(client, "maria@example.org", "a long walk to Lisbon", follow=True)
    assert "Check your email" in text(response)
    assert session_user(client) is None

    page = client.get(confirm_path)
    assert page.status_code == 200
    assert "maria@example.org" in text(page)
    assert "maria_l" in text(page)
    response = client.post(confirm_path, follow=True)
    assert response.redirect_chain[-1][0] == "/accounts/login/"
    assert "Thanks! maria@example.org is confirmed." in text(response)
    assert EmailAddress.objects.get(email="maria@example.org").verified

    response = log_in(client, "maria@example.org", "a long walk to Lisbon")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert session_user(client)["name"] == "maria_l"
    page = client.get("/accounts/email/")
    assert "Logged in as maria_l" in text(page)
    assert "You are now logged in as maria_l." in text(page)
    assert "maria@example.org Primary Confirmed" in text(page)


@pytest.mark.django_db
def test_sign_up_with_a_taken_email_looks_the_same_and_tells_the_owner(
    client, reader, smtp_mailbox
):
    reader(email="ana@example.org", username="ana")
    response = client.post(
        "/accounts/signup/",
        {
            "email": "ana@example.org",
            "username": "someone_else",
            "password1": "a long walk to Lisbon",
            "password2": "a long walk to Lisbon",
        },
        follow=True,
    )
    # The same page a new address gets: the form does not reveal who has an account.
    assert response.redirect_chain[-1][0] == "/accounts/confirm-email/"
    assert "Check your email" in text(response)
    assert not get_user_model().objects.filter(username="someone_else").exists()
    [message] = smtp_mailbox.wait_for(1)
    assert message["To"] == "ana@example.org"
    assert "/accounts/confirm-email/" not in Mailbox.body(message)


@pytest.mark.django_db
def test_sign_up_errors_stand_next_to_fields_and_keep_what_was_typed(client, reader):
    reader(email="taken@example.org", username="taken")
    page = client.post(
        "/accounts/signup/",
        {
            "email": "new@example.org",
            "username": "taken",
            "password1": "a long walk to Lisbon",
            "password2": "a long walk to Porto",
        },
    )
    assert page.status_code == 200
    soup = BeautifulSoup(page.content, "html.parser")
    assert "Your account has not been created yet" in text(page)
    # The error sits in the field's own block and the input points at it.
    username = soup.find("input", {"name": "username"})
    assert username["value"] == "taken"
    assert username["aria-invalid"] == "true"
    assert soup.find(id="id_username_error").get_text().strip()
    assert "id_username_error" in username["aria-describedby"]
    assert soup.find("input", {"name": "email"})["value"] == "new@example.org"
    assert "You must type the same password each time." in soup.find(id="id_password2_error").text
    # Passwords are never written back into the page.
    assert not soup.find("input", {"name": "password1"}).get("value")


@pytest.mark.django_db
def test_wrong_password_says_so_and_keeps_the_email(client, reader):
    reader()
    page = log_in(client, "ana@example.org", "not my password")
    assert page.status_code == 200
    assert "The email address and/or password you specified are not correct." in text(page)
    assert "Lost your password?" in text(page)
    soup = BeautifulSoup(page.content, "html.parser")
    assert soup.find("input", {"name": "login"})["value"] == "ana@example.org"
    assert session_user(client) is None


# --- Log out: POST only (catalog F03) and the old cookie is dead (catalog Z02) ------------------


@pytest.mark.django_db
def test_logout_on_get_only_asks(client, reader):
    reader()
    assert log_in(client, "ana@example.org").status_code == 302
    page = client.get("/accounts/logout/")
    assert page.status_code == 200
    assert "Do you really want to log out?" in text(page)
    form = BeautifulSoup(page.content, "html.parser").find("form", action="/accounts/logout/")
    assert form["method"] == "post"
    assert form.find("button", string="Log Out")
    assert session_user(client)["name"] == "ana"


@pytest.mark.django_db
def test_logout_post_without_csrf_token_is_refused(reader):
    reader()
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/accounts/login/")
    token = BeautifulSoup(page.content, "html.parser").find(
        "input", {"name": "csrfmiddlewaretoken"}
    )["value"]
    response = browser.post(
        "/accounts/login/",
        {"login": "ana@example.org", "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert session_user(browser)["name"] == "ana"

    assert browser.post("/accounts/logout/").status_code == 403
    assert session_user(browser)["name"] == "ana"

    page = browser.get("/accounts/logout/")
    token = BeautifulSoup(page.content, "html.parser").find(
        "input", {"name": "csrfmiddlewaretoken"}
    )["value"]
    response = browser.post("/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert session_user(browser) is None


@pytest.mark.django_db
def test_session_id_changes_on_login_and_old_cookie_is_dead_after_logout(client, reader):
    reader()
    anonymous_key = client.session.session_key  # an anonymous session, as a visit would have
    assert anonymous_key

    assert log_in(client, "ana@example.org").status_code == 302
    signed_in_key = client.cookies["sessionid"].value
    assert signed_in_key != anonymous_key
    assert not Session.objects.filter(session_key=anonymous_key).exists()

    # Replaying a cookie works while the session lives (so the check below can fail)...
    replay = Client()
    replay.cookies["sessionid"] = signed_in_key
    assert session_user(replay)["name"] == "ana"

    assert client.post("/accounts/logout/").status_code == 302
    # ...and not after logging out: the server forgot it.
    replay = Client()
    replay.cookies["sessionid"] = signed_in_key
    assert session_user(replay) is None
    assert not Session.objects.filter(session_key=signed_in_key).exists()


@pytest.mark.django_db
def test_session_cookie_is_secure_httponly_samesite_lax(client, reader, settings):
    settings.SESSION_COOKIE_SECURE = True
    reader()
    response = log_in(client, "ana@example.org")
    assert response.status_code == 302
    header = response.cookies["sessionid"].output()
    print(header)
    assert "; Secure" in header
    assert "; HttpOnly" in header
    assert "SameSite=Lax" in header


# --- Lost password: same answer for everyone (no enumeration), a working link by mail ----------


@pytest.mark.django_db
def test_password_reset_answers_alike_and_mails_a_working_link(client, reader, smtp_mailbox):
    reader()

    known = client.post("/accounts/password/reset/", {"email": "ana@example.org"})
    unknown = client.post("/accounts/password/reset/", {"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == "/accounts/password/reset/done/"
    known_page = client.get(known["Location"])
    unknown_page = client.get(unknown["Location"])
    assert known_page.content == unknown_page.content
    assert "If there is an account with that email address" in text(known_page)

    smtp_mailbox.wait_for(2)
    mail = {message["To"]: message for message in smtp_mailbox.messages}
    assert set(mail) == {"ana@example.org", "nobody@example.org"}
    # The address with no account is told so, and gets no key to anything.
    assert "/accounts/password/reset/key/" not in Mailbox.body(mail["nobody@example.org"])

    assert mail["ana@example.org"]["Subject"] == f"[{SITE}] Choose a new password"
    reset_path = link_in(mail["ana@example.org"])
    assert reset_path.startswith("/accounts/password/reset/key/")
    page = client.get(reset_path, follow=True)
    assert "Choose a new password" in text(page)
    form_path = page.redirect_chain[-1][0]  # the key moves out of the URL into the session
    response = client.post(
        form_path,
        {"password1": "a brand new secret 7", "password2": "a brand new secret 7"},
        follow=True,
    )
    assert "Your password has been changed" in text(response)

    assert log_in(client, "ana@example.org", PASSWORD).status_code == 200  # the old one: no
    assert session_user(client) is None
    assert log_in(client, "ana@example.org", "a brand new secret 7").status_code == 302
    assert session_user(client)["name"] == "ana"

    # The link works once.
    page = client.get(reset_path, follow=True)
    assert "This link has expired" in text(page)


# --- Guessing passwords (catalog Z03) --------------------------------------------------------


@pytest.mark.django_db
def test_guessing_passwords_is_blocked_after_five_failures(client, reader):
    reader()
    outcomes = []
    for attempt in range(1, 21):
        response = log_in(client, "ana@example.org", f"guess number {attempt}")
        page = text(response) if response.status_code == 200 else ""
        if response.status_code == 429 or "Too many failed login attempts" in page:
            outcomes.append("blocked")
        elif "are not correct" in page:
            outcomes.append("wrong")
        else:
            outcomes.append(f"other {response.status_code}")
    assert "blocked" in outcomes, f"20 wrong passwords, never blocked: {outcomes}"
    failures_before_block = outcomes.index("blocked")
    print(
        f"\nZ03: {failures_before_block} wrong passwords answered before the block; "
        f"outcomes: {outcomes}"
    )
    assert failures_before_block == 5
    assert outcomes[5:] == ["blocked"] * 15

    # Even the right password is refused while the account is blocked.
    response = log_in(client, "ana@example.org", PASSWORD)
    assert "Too many failed login attempts" in text(response)
    assert session_user(client) is None


@pytest.mark.django_db
def test_failed_login_takes_as_long_for_unknown_and_known_email(client, reader, settings):
    settings.PASSWORD_HASHERS = ["tests.identity.test_accounts.TimingPBKDF2"]
    reader()
    samples = {"known": [], "unknown": []}
    email = {"known": "ana@example.org", "unknown": "nobody@example.org"}
    for _ in range(30):
        for kind in ("known", "unknown"):
            cache.clear()  # measure the answer, not the rate limit
            started = time.perf_counter()
            response = log_in(client, email[kind], "not the password")
            samples[kind].append(time.perf_counter() - started)
            assert "are not correct" in text(response)
    known = statistics.median(samples["known"]) * 1000
    unknown = statistics.median(samples["unknown"]) * 1000
    gap = abs(known - unknown)
    print(
        f"\nfailed login p50: known email {known:.1f} ms, unknown email {unknown:.1f} ms, "
        f"gap {gap:.1f} ms ({gap / max(known, unknown):.0%})"
    )
    assert gap < 0.5 * max(known, unknown)


# --- The pages keep the site's CSP: no inline script or style ---------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "logged_in"),
    [
        ("/accounts/login/", False),
        ("/accounts/signup/", False),
        ("/accounts/password/reset/", False),
        ("/accounts/password/reset/done/", False),
        ("/accounts/confirm-email/", False),
        ("/accounts/confirm-email/not-a-key/", False),
        ("/accounts/password/reset/key/1-not-a-key/", False),
        ("/accounts/logout/", True),
        ("/accounts/email/", True),
        ("/accounts/password/change/", True),
    ],
)
def test_account_pages_use_the_site_frame_without_inline_code(client, reader, path, logged_in):
    if logged_in:
        client.force_login(reader(), backend="allauth.account.auth_backends.AuthenticationBackend")
    response = client.get(path)
    assert response.status_code == 200
    soup = BeautifulSoup(response.content, "html.parser")
    assert soup.find("link", rel="stylesheet")["href"].endswith("broadsheet/css/site.css")
    assert soup.find("main").find("h1")
    assert not soup.select("[style]")
    assert not soup.find("style")
    assert all(script.get("src") for script in soup.find_all("script"))
    assert soup.find("meta", attrs={"name": "robots"})["content"] == "noindex"


# --- In a browser: the pages fit a phone --------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_account_pages_fit_a_390px_phone(live_server, new_page, reader):
    reader()
    page = new_page(width=390, height=844)
    shots = os.environ.get("BROADSHEET_SCREENSHOTS")

    def check(name):
        if shots:
            page.screenshot(path=f"{shots}/account-{name}.png", full_page=True)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name}: {overflow}px wider than the phone"

    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("#id_email", "a.very.long.address.for.a.small.screen@example.org")
    page.fill("#id_username", "ana")
    page.fill("#id_password1", "a long walk to Lisbon")
    page.fill("#id_password2", "a long walk to Porto")
    page.click("button[type=submit]")
    assert page.locator("#id_password2_error").is_visible()
    assert page.input_value("#id_email") == "a.very.long.address.for.a.small.screen@example.org"
    check("signup-errors")

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "ana@example.org")
    page.fill("#id_password", "not my password")
    page.click("button[type=submit]")
    assert page.get_by_text("are not correct").is_visible()
    check("login-error")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    for name, path in [
        ("email", "/accounts/email/"),
        ("password-change", "/accounts/password/change/"),
        ("password-reset", "/accounts/password/reset/"),
        ("logout", "/accounts/logout/"),
    ]:
        page.goto(f"{live_server.url}{path}")
        check(name)
    page.get_by_role("button", name="Log Out").click()
    page.wait_for_url(f"{live_server.url}/")
