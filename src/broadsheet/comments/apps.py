from django.apps import AppConfig


class CommentsConfig(AppConfig):
    name = "broadsheet.comments"
    label = "comments"
    verbose_name = "Discussion"

    def ready(self) -> None:
        # Receivers of comment_posted / comment_moderated (signals.py): the mail each change
        # causes, and what the spam defences learn from moderators.
        from . import akismet, antispam, classifier, notifications, subscriptions  # noqa: F401
