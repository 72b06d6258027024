"""Re-run events/sql/log.sql: flunq_horizon finds the horizon through the positions' own index,
then drop the index on (xid, position), which it no longer needs."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0012_append_without_probe")]

    operations = [
        migrations.RunSQL(SQL, migrations.RunSQL.noop),
        migrations.RemoveIndex(model_name="event", name="flunq_events_xid"),
    ]
