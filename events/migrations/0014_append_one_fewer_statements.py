"""Re-run events/sql/log.sql: flunq_append_one updates the stream's row without reading it first
and draws its position in an expression; it and flunq_draw_positions return named row types."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0013_horizon_without_xid_index")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
