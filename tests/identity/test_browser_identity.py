"""A reader signs in from the comment form in real Chromium, against a real OpenID provider
(npm oidc-provider on loopback): in a popup, with the popup blocked, and without JavaScript.
What they typed survives every step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from broadsheet.comments.models import Comment
from tests.test_browser_comments import evil_site  # noqa: F401 — fixture

from .conftest import op_login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

TEXT = "Typed before logging in: solidarity from Porto."


@pytest.fixture
def demo_site(demo_site, settings):
    """The demo site, whose canonical address is the live server's (redirect URIs use it)."""
    settings.BROADSHEET_BASE_URL = demo_site[0]
    return demo_site


def open_article(page, base, thread):
    page.goto(f"{base}{thread.url}")
    page.wait_for_selector('#commentform[data-ready="1"]', state="attached")


def session_cookie(page):
    return next((c["value"] for c in page.context.cookies() if c["name"] == "sessionid"), None)


def sign_in_again_in_popup(page, provider_id):
    """The provider remembers the reader: the popup goes there and back, and closes."""
    with page.expect_popup() as popup_info:
        page.click(f'button.identity-icon[value="{provider_id}"]')
    popup = popup_info.value
    if not popup.is_closed():
        popup.wait_for_event("close", timeout=15_000)


def test_popup_sign_in_log_out_and_post_keep_the_text(demo_site, new_page, oidc_op):
    oidc_op("op1", name="Example ID")
    base, thread = demo_site
    page = new_page()
    open_article(page, base, thread)
    page.fill("#comment", TEXT)

    with page.expect_popup() as popup_info:
        page.click('button.identity-icon[value="op1"]')
    expect(page.locator("#identity-status")).to_have_text(re.compile(r"Connecting to Example ID"))
    popup = popup_info.value
    popup.wait_for_url(re.compile(r"/interaction/"))
    before = session_cookie(page)  # created when the sign-in started (it holds the state)
    op_login(popup, "alice")
    popup.wait_for_event("close", timeout=15_000)

    line = page.locator("#identity-line")
    expect(line).to_be_visible()
    expect(line).to_contain_text("You are commenting using your Example ID account.")
    expect(line.locator("#identity-name")).to_have_text("Alice Example")
    expect(page.locator("#guest-fields")).to_be_hidden()
    assert page.input_value("#comment") == TEXT
    signed_in = session_cookie(page)
    assert before and signed_in and signed_in != before  # rotated at sign-in (Z02)

    page.click("#identity-logout-button")
    expect(page.locator("#guest-fields")).to_be_visible()
    expect(line).to_be_hidden()
    assert page.input_value("#comment") == TEXT
    # The signed-in session is dead after Log Out, even replayed from elsewhere.
    replay = requests.get(f"{base}/comments/session/", cookies={"sessionid": signed_in}, timeout=5)
    assert replay.json()["user"] is None

    sign_in_again_in_popup(page, "op1")
    expect(line).to_contain_text("You are commenting using your Example ID account.")
    page.click("#submit")
    page.wait_for_url(re.compile(r"#comment-\d+$"))
    comment = Comment.objects.get(text=TEXT)
    assert comment.identified_by == "provider"
    assert comment.identity_provider == "op1"
    assert comment.identity_provider_name == "Example ID"
    assert comment.author_name == "Alice Example"
    assert comment.user is not None and comment.user.email == ""
    assert page.locator(f"#comment-{comment.pk}").inner_text().count("Alice Example") >= 1


def test_cancelled_sign_in_keeps_the_text_and_the_guest_fields(demo_site, new_page, oidc_op):
    oidc_op("op1", name="Example ID")
    base, thread = demo_site
    page = new_page()
    open_article(page, base, thread)
    page.fill("#comment", TEXT)
    with page.expect_popup() as popup_info:
        page.click('button.identity-icon[value="op1"]')
    popup = popup_info.value
    popup.wait_for_url(re.compile(r"/interaction/"))
    popup.click("text=Cancel")
    popup.wait_for_event("close", timeout=15_000)
    expect(page.locator("#identity-status")).to_contain_text("cancelled")
    expect(page.locator("#guest-fields")).to_be_visible()
    assert page.input_value("#comment") == TEXT


def test_blocked_popup_signs_in_in_the_page_and_brings_the_text_back(demo_site, new_page, oidc_op):
    oidc_op("op1", name="Example ID")
    base, thread = demo_site
    page = new_page()
    page.add_init_script("window.open = function () { return null; };")
    open_article(page, base, thread)
    page.fill("#comment", TEXT)
    page.click('button.identity-icon[value="op1"]')
    op_login(page, "alice")
    page.wait_for_url(re.compile(re.escape(thread.url) + r"#respond$"))
    page.wait_for_selector('#commentform[data-ready="1"]', state="attached")
    expect(page.locator("#identity-line")).to_contain_text(
        "You are commenting using your Example ID account."
    )
    assert page.input_value("#comment") == TEXT


def test_without_javascript_the_icon_signs_in_and_returns_to_the_form_with_the_text(
    demo_site, new_page, oidc_op
):
    oidc_op("op1", name="Example ID")
    base, thread = demo_site
    page = new_page(javascript=False)
    page.goto(f"{base}{thread.url}")
    page.fill("#comment", TEXT)
    page.click('button.identity-icon[value="op1"]')
    # allauth's confirm page (sign-in only starts by POST), then the provider.
    page.click("form button[type=submit]")
    op_login(page, "alice")
    page.wait_for_url(re.compile(r"/comments/respond/\d+/"))
    expect(page.locator("#identity-line")).to_contain_text(
        "You are commenting using your Example ID account."
    )
    assert page.input_value("#comment") == TEXT
    page.click("#submit")
    page.wait_for_url(re.compile(r"#comment-\d+$"))
    assert Comment.objects.get(text=TEXT).identity_provider == "op1"


def test_popup_pages_keep_the_opener_and_the_article_isolates_itself(demo_site, oidc_op):
    base, thread = demo_site
    article = requests.get(f"{base}{thread.url}", timeout=5)
    assert article.headers["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"
    done = requests.get(f"{base}/comments/identity/done/?thread={thread.pk}&popup=1", timeout=5)
    assert done.headers["Cross-Origin-Opener-Policy"] == "unsafe-none"


def test_no_script_posts_messages_to_any_origin():
    root = Path(__file__).resolve().parents[2] / "src"
    offenders = [
        str(path)
        for path in root.rglob("*.js")
        if re.search(r"postMessage\([^)]*[\"']\*[\"']", path.read_text())
    ]
    assert offenders == []


def test_names_from_the_provider_are_shown_as_text(demo_site, new_page, oidc_op):
    payload = "</script><script>alert(1)</script>\u2028<img src=x onerror=alert(2)>"
    oidc_op("op1", name=payload, env={"OP_NAME_CLAIM": payload})
    base, thread = demo_site
    page = new_page()
    open_article(page, base, thread)
    page.fill("#comment", TEXT)
    with page.expect_popup() as popup_info:
        page.click('button.identity-icon[value="op1"]')
    op_login(popup_info.value, "alice")
    expect(page.locator("#identity-line")).to_be_visible()
    assert page.locator("#identity-name").inner_text() == payload
    assert page.locator("#identity-provider").inner_text() == payload
    page.click("#submit")
    page.wait_for_url(re.compile(r"#comment-\d+$"))
    assert page.dialogs == []


def test_other_sites_cannot_hear_or_fake_the_popup_report(
    demo_site,
    new_page,
    oidc_op,
    evil_site,  # noqa: F811
):
    oidc_op("op1", name="Example ID")
    base, thread = demo_site
    pages, evil = evil_site
    # (a) A hostile opener opens our last sign-in page and listens: it hears nothing.
    pages["/opener"] = (
        "<button id=go>go</button><script>document.title='none';"
        "window.addEventListener('message',"
        "function(e){document.title='GOT '+JSON.stringify(e.data)});"
        f"document.getElementById('go').onclick=function(){{window.w=window.open("
        f"'{base}/comments/identity/done/?thread={thread.pk}&popup=1')}};</script>"
    )
    attacker = new_page()
    attacker.goto(f"{evil}/opener")
    with attacker.expect_popup() as opened:
        attacker.click("#go")
    opened.value.wait_for_load_state()
    attacker.wait_for_timeout(1000)
    assert attacker.title() == "none"

    # (b) A hostile page that opened the article posts a fake report while a real sign-in is
    # under way: the form ignores it.
    pages["/faker"] = (
        "<button id=go>go</button><script>"
        f"document.getElementById('go').onclick=function(){{window.w=window.open('{base}{thread.url}')}};"
        "window.fake=function(){try{w.postMessage({type:'broadsheet-identity',status:'ok'},'*');"
        "w.postMessage({code:'c',state:'s'},'*')}catch(e){}};</script>"
    )
    faker = new_page()
    faker.goto(f"{evil}/faker")
    with faker.expect_popup() as opened:
        faker.click("#go")
    article = opened.value
    article.wait_for_selector('#commentform[data-ready="1"]', state="attached")
    article.fill("#comment", TEXT)
    with article.expect_popup():
        article.click('button.identity-icon[value="op1"]')
    expect(article.locator("#identity-status")).to_contain_text("Connecting to Example ID")
    session_calls = []
    article.on(
        "request", lambda r: session_calls.append(r.url) if "/comments/session/" in r.url else None
    )
    faker.evaluate("window.fake()")
    article.wait_for_timeout(1000)
    expect(article.locator("#identity-status")).to_contain_text("Connecting to Example ID")
    assert session_calls == []
    assert article.locator("#identity-line").is_hidden()
    assert article.input_value("#comment") == TEXT


def test_a_response_from_another_provider_is_refused(demo_site, new_page, oidc_op):
    """Mix-up (RFC 9700 4.4): op2's code and issuer delivered to op1's flow."""
    from urllib.parse import parse_qs, urlsplit

    issuer1 = oidc_op("op1")
    oidc_op("op2")
    base, thread = demo_site
    captured = {}
    # The victim starts signing in with op1; the request to op1 is stopped and its state kept.
    page = new_page(javascript=False)

    def stop(route):
        captured["op1"] = route.request.url
        route.fulfill(status=200, body="stopped", content_type="text/plain")

    page.route(re.compile(re.escape(issuer1) + r"/auth\?.*"), stop)
    page.goto(f"{base}/comments/respond/{thread.pk}/")
    page.fill("#comment", TEXT)
    page.click('button.identity-icon[value="op1"]')  # the form page has a token
    # The attacker signs in with op2 in their own browser and keeps op2's answer.
    attacker = new_page(javascript=False)
    attacker.on(
        "request",
        lambda r: "/op2/login/callback/" in r.url and captured.setdefault("op2", r.url),
    )
    attacker.goto(f"{base}/comments/respond/{thread.pk}/")
    attacker.fill("#comment", "x")
    attacker.click('button.identity-icon[value="op2"]')
    op_login(attacker, "mallory")
    for _ in range(100):  # bounded: 10 s
        if "op1" in captured and "op2" in captured:
            break
        page.wait_for_timeout(100)
    state1 = parse_qs(urlsplit(captured["op1"]).query)["state"][0]
    answer2 = parse_qs(urlsplit(captured["op2"]).query)
    page.unroute_all()
    # op2's code and issuer, delivered into the victim's op1 flow.
    page.goto(
        f"{base}/accounts/oidc/op1/login/callback/?code={answer2['code'][0]}"
        f"&state={state1}&iss={answer2['iss'][0]}"
    )
    assert "Logging in did not work" in page.content()
    assert page.context.request.get(f"{base}/comments/session/").json()["user"] is None
