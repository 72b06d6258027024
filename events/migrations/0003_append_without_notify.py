"""Re-run events/sql/log.sql: flunq_append no longer NOTIFYs inside the append transaction."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0002_log_functions")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
