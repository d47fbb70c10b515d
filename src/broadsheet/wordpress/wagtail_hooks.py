from django.contrib.auth.models import Permission
from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from . import admin_views


@hooks.register("register_admin_urls")
def wordpress_import_urls():
    urls = [
        path("", admin_views.index, name="index"),
        path("<int:pk>/", admin_views.detail, name="detail"),
        path("<int:pk>/status.json", admin_views.status, name="status"),
    ]
    return [path("wordpress-import/", include((urls, "wordpress_import")))]


class ImportMenuItem(MenuItem):
    def is_shown(self, request):
        return request.user.has_perm(admin_views.PERMISSION)


@hooks.register("register_settings_menu_item")
def wordpress_import_menu_item():
    return ImportMenuItem(
        "Import from WordPress",
        reverse("wordpress_import:index"),
        name="wordpress-import",
        icon_name="download",
        order=900,
    )


@hooks.register("register_permissions")
def wordpress_import_permissions():
    # Shown in Settings › Groups, so editors other than superusers can be allowed to import.
    return Permission.objects.filter(
        content_type__app_label="wordpress", codename="add_wordpressimport"
    )
