from django.db import migrations, models

from broadsheet.core import html as html_policy


def store_html(apps, schema_editor):
    """Each existing comment's HTML under today's policy (what ``Comment.save`` now stores).
    A later change of policy is caught by the stamp, not by this migration."""
    Comment = apps.get_model("comments", "Comment")
    batch = []
    for comment in Comment.objects.only("pk", "text").order_by("pk").iterator(chunk_size=500):
        comment.text_html = html_policy.render_comment(comment.text)
        comment.text_html_policy = html_policy.COMMENT_POLICY
        batch.append(comment)
        if len(batch) == 500:
            Comment.objects.bulk_update(batch, ["text_html", "text_html_policy"])
            batch = []
    if batch:
        Comment.objects.bulk_update(batch, ["text_html", "text_html_policy"])


class Migration(migrations.Migration):
    dependencies = [
        ("comments", "0005_spamstats_vocabulary"),
    ]

    operations = [
        migrations.AddField(
            model_name="comment",
            name="text_html",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.AddField(
            model_name="comment",
            name="text_html_policy",
            field=models.CharField(blank=True, default="", editable=False, max_length=16),
        ),
        migrations.RunPython(store_html, migrations.RunPython.noop),
    ]
