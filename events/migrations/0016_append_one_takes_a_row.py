"""Re-run events/sql/log.sql: flunq_append_one takes the event as a row (flunq_new_event) whose
attributes are the caller's parameters, instead of JSON it parsed on every append. The JSON form
stays, as a wrapper, for processes of the release before while a rolling deploy migrates."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0015_mark_restored_events")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
