"""Event data as ``json`` (kept as written, no conversion on read); the append functions take JSON
text and parse it once (events/sql/log.sql, run again)."""

from pathlib import Path

from django.db import migrations

import events.models

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0006_append_one")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE flunq_events ALTER COLUMN data TYPE json USING data::json",
                    "ALTER TABLE flunq_events ALTER COLUMN data TYPE jsonb USING data::jsonb",
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="data",
                    field=events.models.StoredJSONField(blank=True, null=True),
                )
            ],
        ),
        migrations.RunSQL(SQL, migrations.RunSQL.noop),
    ]
