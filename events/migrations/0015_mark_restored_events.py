"""Re-run events/sql/log.sql: flunq_mark_restored_events, for the xids of events restored from a
logical dump of another cluster, and the guard that lets it change those and nothing else."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0014_append_one_fewer_statements")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
