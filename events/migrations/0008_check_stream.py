"""Re-run events/sql/log.sql: both append functions share flunq_check_stream and
flunq_draw_positions."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0007_data_as_json")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
