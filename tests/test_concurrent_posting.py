"""Concurrent comment posts on the configured database (a SQLite file by default): none fails
with "database is locked", and every acknowledged post is stored."""

import threading

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from broadsheet.comments.models import Comment

WRITERS, POSTS_EACH = 8, 5


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_are_all_stored(thread_factory, comment_data):
    thread = thread_factory()
    barrier = threading.Barrier(WRITERS)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        client = Client()
        try:
            barrier.wait()
            for m in range(POSTS_EACH):
                data = comment_data(
                    thread,
                    comment=f"Writer {n}, post {m}.",
                    email=f"writer{n}@example.org",
                    submission_key=f"k{n}x{m}",
                )
                statuses.append(client.post(reverse("comments:post"), data).status_code)
        except BaseException as error:  # noqa: BLE001 — reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert statuses == [303] * (WRITERS * POSTS_EACH)
    assert Comment.objects.filter(thread=thread).count() == WRITERS * POSTS_EACH
