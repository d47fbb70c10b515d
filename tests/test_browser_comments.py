"""A guest reader in a real browser (Debian's Chromium): comment and reply, with and without
JavaScript; what other readers see; cross-site forms and framing."""

import http.server
import threading

import pytest

from broadsheet.comments.models import Comment

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def fill_guest(page, *, text, name="Ana Reader", email="ana@example.org", url=""):
    page.fill("#comment", text)
    page.fill("#author", name)
    page.fill("#email", email)
    if url:
        page.fill("#url", url)


def open_article(page, base, thread, *, javascript=True, query=""):
    page.goto(f"{base}{thread.url}{query}")
    if javascript:
        page.wait_for_selector('#commentform[data-ready="1"]', state="attached")


def test_guest_comments_with_javascript_and_sees_it_awaiting_moderation(demo_site, new_page):
    base, thread = demo_site
    page = new_page()
    open_article(page, base, thread)
    assert page.locator("#reply-title").inner_text().startswith("Leave a Reply")
    assert page.get_by_text("Fill in your details below or click an icon to log in:").is_visible()
    assert page.get_by_text("Your email address will not be published.").is_visible()
    fill_guest(page, text="Greetings from the Lisbon branch.")
    page.click("#submit")
    page.wait_for_url(f"**{thread.url}#comment-*")
    comment = Comment.objects.get(text="Greetings from the Lisbon branch.")
    item = page.locator(f"#comment-{comment.pk}")
    assert item.is_visible()
    assert "Your comment is awaiting moderation." in item.inner_text()

    other = new_page()
    open_article(other, base, thread)
    assert other.locator(f"#comment-{comment.pk}").count() == 0
    assert "Greetings from the Lisbon branch." not in other.content()


def test_guest_replies_with_javascript_and_the_form_moves_under_the_comment(demo_site, new_page):
    base, thread = demo_site
    parent = thread.comments.visible().filter(parent=None).first()
    page = new_page()
    open_article(page, base, thread)
    page.fill("#comment", "Typed before choosing to reply.")
    page.click(f"#comment-{parent.pk} .comment-reply-link >> nth=0")
    # The form now sits inside the comment it answers, with the seed's wording.
    assert page.locator(f"#comment-{parent.pk} #respond").count() == 1
    title = page.locator("#reply-title").inner_text()
    assert title.startswith(f"Leave a Reply to {parent.author_name}")
    assert page.locator("#cancel-comment-reply-link").is_visible()
    assert page.input_value("#comment") == "Typed before choosing to reply."
    page.click("#cancel-comment-reply-link")
    assert page.locator(f"#comment-{parent.pk} #respond").count() == 0
    assert page.input_value("#comment_parent") == "0"
    page.click(f"#comment-{parent.pk} .comment-reply-link >> nth=0")
    fill_guest(page, text="A reply in the thread.")
    page.click("#submit")
    page.wait_for_url(f"**{thread.url}#comment-*")
    reply = Comment.objects.get(text="A reply in the thread.")
    assert reply.parent_id == parent.pk
    nested = page.locator(f"#comment-{parent.pk} ol.children #comment-{reply.pk}")
    assert nested.count() == 1
    assert page.dialogs == []


def test_guest_comments_and_replies_without_javascript(demo_site, new_page):
    base, thread = demo_site
    parent = thread.comments.visible().filter(parent=None).first()
    page = new_page(javascript=False)
    open_article(page, base, thread, javascript=False)
    fill_guest(page, text="Posted with scripts off.")
    page.click("#submit")
    # No token without JavaScript: the reader confirms once, text intact.
    assert page.input_value("#comment") == "Posted with scripts off."
    assert page.get_by_text("press “Post Comment” again").is_visible()
    page.click("#submit")
    page.wait_for_url(f"**{thread.url}#comment-*")
    first = Comment.objects.get(text="Posted with scripts off.")
    assert (
        "Your comment is awaiting moderation." in page.locator(f"#comment-{first.pk}").inner_text()
    )

    page.click(f"#comment-{parent.pk} .comment-reply-link >> nth=0")
    assert f"replytocom={parent.pk}" in page.url
    assert page.locator(f"#comment-{parent.pk} #respond").count() == 1
    assert (
        page.locator("#reply-title")
        .inner_text()
        .startswith(f"Leave a Reply to {parent.author_name}")
    )
    page.fill("#comment", "A reply with scripts off.")
    page.click("#submit")
    # The confirmation page fills in the details this browser used last time.
    assert page.input_value("#author") == "Ana Reader"
    assert page.input_value("#comment") == "A reply with scripts off."
    page.click("#submit")
    page.wait_for_url(f"**{thread.url}#comment-*")
    reply = Comment.objects.get(text="A reply with scripts off.")
    assert reply.parent_id == parent.pk
    assert reply.author_name == "Ana Reader"


def test_missing_name_comes_back_with_a_message_and_the_text(demo_site, new_page):
    base, thread = demo_site
    page = new_page()
    open_article(page, base, thread)
    fill_guest(page, text="Please keep this text.", name="")
    page.click("#submit")
    assert page.locator("#author-error").inner_text() == "Please enter your name."
    assert page.input_value("#comment") == "Please keep this text."
    page.fill("#author", "Ana Reader")
    page.click("#submit")
    page.wait_for_url(f"**{thread.url}#comment-*")
    assert Comment.objects.filter(text="Please keep this text.").count() == 1


def test_article_fits_a_phone_screen(demo_site, new_page):
    base, thread = demo_site
    page = new_page(width=390, height=844)
    open_article(page, base, thread)
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 390
    assert page.locator("h1").first.is_visible()


# --- F01 / F04 from a hostile site -------------------------------------------------------------


@pytest.fixture
def evil_site():
    """A page on another site (evil.test → 127.0.0.1) whose HTML the test sets."""
    pages = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = pages.get(self.path, "").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield pages, f"http://evil.test:{server.server_address[1]}"
    server.shutdown()


def test_cross_site_form_cannot_post_a_comment_for_a_signed_in_reader(
    demo_site, new_page, evil_site, user_factory
):
    base, thread = demo_site
    pages, evil = evil_site
    user_factory(username="victim", password="correct horse 42")
    page = new_page()
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "victim")
    page.fill("#id_password", "correct horse 42")
    page.click("button[type=submit]")
    pages["/attack"] = (
        f'<form id="f" method="post" action="{base}/comments/post/">'
        f'<input name="thread" value="{thread.pk}"><input name="comment" value="Forged comment">'
        '<input name="author" value="Victim"><input name="email" value="victim@example.org">'
        "</form><script>document.getElementById('f').submit()</script>"
    )
    responses = []
    page.on(
        "response", lambda r: responses.append(r) if r.url.endswith("/comments/post/") else None
    )
    page.goto(f"{evil}/attack")
    page.wait_for_load_state("networkidle")
    assert [r.status for r in responses] == [403]
    # Refused as cross-site outright: no confirmation form carrying the forged text.
    assert responses[0].text() == "Forbidden: comments can only be posted from this site."
    assert not Comment.objects.filter(text="Forged comment").exists()


def test_article_and_admin_cannot_be_framed_by_another_site(demo_site, new_page, evil_site):
    base, thread = demo_site
    pages, evil = evil_site
    pages["/frame"] = (
        f'<iframe id="a" src="{base}{thread.url}"></iframe>'
        f'<iframe id="b" src="{base}/admin/login/"></iframe>'
    )
    page = new_page()
    page.goto(f"{evil}/frame")
    page.wait_for_timeout(1500)
    frames = page.frames[1:]
    assert len(frames) == 2
    # Chromium replaces a frame it refuses to render with its error page.
    assert [frame.url for frame in frames] == ["chrome-error://chromewebdata/"] * 2
