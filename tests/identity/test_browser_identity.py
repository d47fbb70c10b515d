"""A reader signs in from the comment form in real Chromium, against a real OpenID provider
(npm oidc-provider on loopback): in a popup, with the popup blocked, and without JavaScript.
What they typed survives every step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from broadsheet.comments.models import Comment

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
    op_login(popup, "alice")
    popup.wait_for_event("close", timeout=15_000)

    line = page.locator("#identity-line")
    expect(line).to_be_visible()
    expect(line).to_contain_text("You are commenting using your Example ID account.")
    expect(line.locator("#identity-name")).to_have_text("Alice Example")
    expect(page.locator("#guest-fields")).to_be_hidden()
    assert page.input_value("#comment") == TEXT

    page.click("#identity-logout-button")
    expect(page.locator("#guest-fields")).to_be_visible()
    expect(line).to_be_hidden()
    assert page.input_value("#comment") == TEXT

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


def test_blocked_popup_signs_in_in_the_page_and_brings_the_text_back(
    demo_site, new_page, oidc_op
):
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
    import requests

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
