"""Re-run events/sql/log.sql: flunq_append can skip its look-up of stored (source, id), for callers
that run it again with the look-up when the unique index refuses a row."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0011_append_generic_plans")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
