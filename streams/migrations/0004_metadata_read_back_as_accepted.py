"""State only (no SQL): the column is read with flunq_events.jsonutil.StoredJSONDecoder, so a number
jsonb keeps as digits past 64 bits comes back as the float it was written as."""

from django.db import migrations, models

import flunq_events.jsonutil


class Migration(migrations.Migration):
    dependencies = [
        ("streams", "0003_fewer_index_and_check_entries"),
    ]

    operations = [
        migrations.AlterField(
            model_name="stream",
            name="metadata",
            field=models.JSONField(
                blank=True,
                db_default=models.Value({}, output_field=models.JSONField()),
                decoder=flunq_events.jsonutil.StoredJSONDecoder,
            ),
        ),
    ]
