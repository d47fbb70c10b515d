"""X01/X02 in a real browser: hostile comments rendered on the article page and in the
moderation queue never execute. The page's Content-Security-Policy is bypassed here on purpose,
so what is tested is the sanitizer itself, not only the CSP behind it."""

import pytest
from django.utils import timezone

from broadsheet.comments.models import Comment

from .payloads import NAME_PAYLOADS, URL_PAYLOADS, XSS_PAYLOADS, load_blns

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# Fire every handler a payload could have hidden: hover, focus, pointer and animation events.
PROVOKE = """() => {
  const events = ["mouseover", "mouseenter", "focus", "focusin", "pointerover", "mousedown",
                  "mouseup", "animationstart", "toggle", "load", "error"];
  for (const el of document.querySelectorAll("#comments *, .comment-queue *")) {
    for (const type of events) el.dispatchEvent(new Event(type, {bubbles: true}));
  }
  return document.querySelectorAll("#comments *, .comment-queue *").length;
}"""
TRAP = """
  window.__xss = [];
  for (const name of ["alert", "confirm", "prompt", "print"]) {
    window[name] = (msg) => { window.__xss.push(String(msg)); };
  }
"""


def _hostile_comments(thread):
    # NUL is refused at the form (PostgreSQL cannot store it), so it never reaches a page.
    texts = [t for t in [t for _, t in XSS_PAYLOADS] + load_blns(required=False) if "\x00" not in t]
    rows = []
    now = timezone.now()
    for n, text in enumerate(texts):
        rows.append(
            Comment(
                thread=thread,
                status=Comment.Status.APPROVED,
                text=text,
                created_at=now,
                author_name=NAME_PAYLOADS[n % len(NAME_PAYLOADS)],
                author_email=f"reader{n}@example.org",
                # Stored raw, as an import could bring them: the output must still be safe.
                author_url=URL_PAYLOADS[n % len(URL_PAYLOADS)],
            )
        )
        pending = Comment(
            **{
                f.attname: getattr(rows[-1], f.attname)
                for f in Comment._meta.concrete_fields
                if f.attname != "id"
            }
        )
        pending.status = Comment.Status.PENDING
        rows.append(pending)
    Comment.objects.bulk_create(rows)
    return len(texts)


def _executed(page, url):
    page.goto(url)
    page.wait_for_load_state("load")
    count = page.evaluate(PROVOKE)
    page.wait_for_timeout(300)
    return count, page.evaluate("window.__xss"), page.dialogs


@pytest.fixture
def hostile_page(browser):
    contexts = []

    def make():
        context = browser.new_context(bypass_csp=True)
        context.add_init_script(TRAP)
        contexts.append(context)
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        return page

    yield make
    for context in contexts:
        context.close()


def test_the_oracle_sees_an_executed_payload(hostile_page, live_server):
    page = hostile_page()
    page.goto(f"{live_server.url}/comments/session/")
    page.set_content('<div id="comments"><b onmouseover="alert(99)">x</b></div>')
    page.evaluate(PROVOKE)
    assert page.evaluate("window.__xss") == ["99"]


def test_hostile_comments_do_not_execute_on_the_article_page(demo_site, hostile_page):
    base, thread = demo_site
    tried = _hostile_comments(thread)
    page = hostile_page()
    elements, calls, dialogs = _executed(page, f"{base}{thread.url}")
    print(
        f"\nX01 article page: {tried} payloads, {elements} elements provoked, "
        f"{len(calls) + len(dialogs)} executed"
    )
    assert page.locator(".comment-list > li").count() >= tried
    assert calls == [] and dialogs == []


def test_hostile_comments_do_not_execute_in_the_moderation_queue(
    demo_site, hostile_page, user_factory
):
    base, thread = demo_site
    tried = _hostile_comments(thread)
    user_factory(username="moderator", password="correct horse 42", moderator=True)
    page = hostile_page()
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "moderator")
    page.fill("#id_password", "correct horse 42")
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    total_calls = 0
    for n in range(1, (tried // 50) + 2):
        elements, calls, dialogs = _executed(page, f"{base}/admin/comments/?status=pending&p={n}")
        assert page.locator(".comment-queue").count() == 1
        assert calls == [] and dialogs == []
        total_calls += len(calls)
    print(f"\nX01 moderation queue: {tried} payloads, {total_calls} executed")
