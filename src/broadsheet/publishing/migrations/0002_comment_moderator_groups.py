"""Wagtail's Editors and Moderators groups may moderate reader comments, as WordPress's
editors can."""

from django.db import migrations

GROUPS = ("Editors", "Moderators")


def grant(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="comments", model="comment")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="moderate_comment",
        defaults={"name": "Can moderate comments"},
    )
    for group in Group.objects.filter(name__in=GROUPS):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name__in=GROUPS):
        group.permissions.remove(*Permission.objects.filter(codename="moderate_comment"))


class Migration(migrations.Migration):
    dependencies = [
        ("publishing", "0001_initial"),
        ("comments", "0001_initial"),
        ("wagtailcore", "0002_initial_data"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
