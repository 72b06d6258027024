"""State only (no SQL): the column is read with flunq_events.jsonutil.StoredJSONDecoder, so a number
jsonb keeps as digits past 64 bits comes back as the float it was written as."""

from django.db import migrations, models

import flunq_events.jsonutil


class Migration(migrations.Migration):
    dependencies = [
        ("schemas", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="schema",
            name="document",
            field=models.JSONField(decoder=flunq_events.jsonutil.StoredJSONDecoder),
        ),
    ]
