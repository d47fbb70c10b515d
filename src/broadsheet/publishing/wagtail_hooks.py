from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.menu import LinkMenuItemComponent, MenuItem

from broadsheet.comments.models import Comment

from . import comment_moderation


@hooks.register("register_admin_urls")
def comment_moderation_urls():
    urls = [
        path("", comment_moderation.queue, name="queue"),
        path("bulk/", comment_moderation.bulk, name="bulk"),
        path("<int:pk>/edit/", comment_moderation.edit, name="edit"),
        path("<int:pk>/reply/", comment_moderation.reply, name="reply"),
        path("blocks/", comment_moderation.blocks, name="blocks"),
        path("blocks/<int:pk>/unblock/", comment_moderation.unblock, name="unblock"),
        path("mail/", comment_moderation.mail, name="mail"),
        path("personal-data/", comment_moderation.personal_data, name="personal_data"),
    ]
    return [path("comments/", include((urls, "comment_moderation")))]


class CommentsMenuItem(MenuItem):
    def is_shown(self, request):
        return request.user.has_perm("comments.moderate_comment")

    def render_component(self, request):
        pending = Comment.objects.pending().count()
        label = f"Comments ({pending})" if pending else "Comments"
        return LinkMenuItemComponent(
            self.name,
            label,
            self.url,
            icon_name=self.icon_name,
            classname=self.classname,
            attrs=self.attrs,
        )


@hooks.register("register_admin_menu_item")
def comments_menu_item():
    return CommentsMenuItem(
        "Comments", reverse("comment_moderation:queue"), icon_name="comment", order=250
    )
