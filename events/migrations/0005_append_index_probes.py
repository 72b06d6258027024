"""Re-run events/sql/log.sql: the append function's look-ups are index probes per event."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0004_append_with_tenant")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
