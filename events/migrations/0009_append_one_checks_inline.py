"""Re-run events/sql/log.sql: flunq_append_one does the stream checks itself instead of calling
flunq_check_stream (docs/benchmarks.md, finding 14)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0008_check_stream")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
