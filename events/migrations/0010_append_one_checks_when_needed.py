"""Re-run events/sql/log.sql: flunq_append_one calls flunq_check_stream only when one of its checks
can fail, instead of carrying a copy of them (same refusals, same cost)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0009_append_one_checks_inline")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
