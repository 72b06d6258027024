"""Re-run events/sql/log.sql: flunq_append_one, the single-event append."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0005_append_index_probes")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
