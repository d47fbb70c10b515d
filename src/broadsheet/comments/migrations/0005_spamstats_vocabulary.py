from django.db import migrations, models
from django.db.models import Q


def count_vocabulary(apps, schema_editor):
    SpamStats = apps.get_model("comments", "SpamStats")
    SpamToken = apps.get_model("comments", "SpamToken")
    SpamStats.objects.update(
        vocabulary=SpamToken.objects.filter(Q(spam__gt=0) | Q(ham__gt=0)).count()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("comments", "0004_discussion_controls"),
    ]

    operations = [
        migrations.AddField(
            model_name="spamstats",
            name="vocabulary",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(count_vocabulary, migrations.RunPython.noop),
    ]
