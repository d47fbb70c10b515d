"""What an accepted comment post costs the database: a fixed number of queries, whatever the
thread already holds, and a write transaction that only writes (issue 6)."""

import secrets

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from broadsheet.comments import guards
from broadsheet.comments.models import Block, Comment

POST = reverse("comments:post")


@pytest.fixture
def open_discussion(discussion_settings):
    """As the comment benchmark runs: comments approved at once, no counting limits."""
    discussion_settings(manual_approval=False, previously_approved=False)


def guest_post(thread, n: int):
    """A new browser each time (as the benchmark's clients are), with a unique comment."""
    client = Client()
    data = {
        "thread": thread.pk,
        "comment_parent": 0,
        "author": f"Reader {n}",
        "email": f"reader{n}@example.org",
        "url": "",
        "comment": f"Comment number {n}, on its own.",
        "submission_key": secrets.token_hex(16),
    }
    with CaptureQueriesContext(connection) as queries:
        response = client.post(POST, data)
    assert response.status_code == 303, response.content[:500]
    return [q["sql"] for q in queries.captured_queries]


def in_write_transaction(sqls: list[str]) -> list[str]:
    """The statements between the post's BEGIN (or SAVEPOINT, inside a test's transaction) and
    its COMMIT (or RELEASE)."""
    start = next(i for i, sql in enumerate(sqls) if sql.startswith(("BEGIN", "SAVEPOINT")))
    end = next(i for i, sql in enumerate(sqls) if sql.startswith(("COMMIT", "RELEASE")))
    return sqls[start + 1 : end]


def test_an_accepted_post_costs_the_same_queries_on_the_1st_and_the_50th_comment(
    thread_factory, comment_factory, open_discussion, monkeypatch
):
    monkeypatch.setattr(guards, "BLOCKS_CACHE_SECONDS", 3600)  # kept however slow the machine
    guest_post(thread_factory(), 0)  # this process's first post reads what it then keeps
    thread = thread_factory()
    first = guest_post(thread, 1)
    for n in range(2, 50):
        comment_factory(thread, name=f"Reader {n}", email=f"reader{n}@example.org")
    fiftieth = guest_post(thread, 50)
    assert Comment.objects.filter(thread=thread, status=Comment.Status.APPROVED).count() == 50
    assert len(fiftieth) == len(first), "\n".join(fiftieth)
    assert len(first) <= 12, "\n".join(first)


def test_the_write_transaction_of_a_post_only_writes(thread_factory, open_discussion):
    """Reads (settings, guards, who is to be mailed, subscribers) come before it: on SQLite it
    holds the database's one write lock."""
    thread = thread_factory()
    statements = in_write_transaction(guest_post(thread, 1))
    assert statements, "no write transaction seen"
    assert not [s for s in statements if s.lstrip().upper().startswith("SELECT")], statements
    assert len(statements) <= 3  # the comment, its root, its history line


def test_blocks_are_read_once_and_a_new_block_applies_at_once(thread_factory, open_discussion):
    thread = thread_factory()
    guest_post(thread, 1)
    again = guest_post(thread, 2)
    assert not [s for s in again if "comments_block" in s]
    Block.objects.create(kind=Block.Kind.EMAIL, value="reader3@example.org")
    guest_post(thread, 3)
    assert Comment.objects.get(author_email="reader3@example.org").status == Comment.Status.TRASH
    Block.objects.all().delete()
    guest_post(thread, 4)
    assert Comment.objects.get(author_email="reader4@example.org").status == (
        Comment.Status.APPROVED
    )
