"""Re-run events/sql/log.sql: flunq_append runs with generic plans instead of planning its
statements anew on every call."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0010_append_one_checks_when_needed")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
