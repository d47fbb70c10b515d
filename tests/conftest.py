import pytest


@pytest.fixture
def thread_factory(db):
    from broadsheet.comments.services import sync_thread

    counter = iter(range(1, 10_000))

    def make(*, url=None, title="A statement", is_open=True, page_id=None):
        return sync_thread(url=url or f"/articles/{next(counter)}/", page_id=page_id, title=title,
                           is_open=is_open)

    return make


@pytest.fixture
def comment_factory(db):
    from django.utils import timezone

    from broadsheet.comments.models import Comment

    def make(thread, *, parent=None, status=Comment.Status.APPROVED, text="A comment.",
             name="Reader", email="reader@example.org", url="", browser_key="", user=None):
        return Comment.objects.create(
            thread=thread, parent=parent, depth=(parent.depth + 1) if parent else 1,
            status=status, author_name=name, author_email=email, author_url=url, text=text,
            browser_key=browser_key, user=user, created_at=timezone.now(),
        )

    return make


@pytest.fixture
def user_factory(db):
    from django.contrib.auth import get_user_model

    counter = iter(range(1, 10_000))

    def make(*, username=None, email=None, moderator=False, password="correct horse 42"):
        n = next(counter)
        user = get_user_model().objects.create_user(
            username=username or f"user{n}", email=email or f"user{n}@example.org",
            password=password,
        )
        if moderator:
            from django.contrib.auth.models import Permission

            user.user_permissions.add(Permission.objects.get(codename="moderate_comment"))
            user.is_staff = True
            user.save()
        return user

    return make


@pytest.fixture
def comment_data():
    """A valid guest submission; override any field."""

    def make(thread, **overrides):
        data = {"thread": thread.pk, "comment_parent": 0, "author": "Ana Reader",
                "email": "ana@example.org", "url": "", "comment": "Solidarity from Lisbon."}
        data.update(overrides)
        return data

    return make
