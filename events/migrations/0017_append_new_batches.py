"""Re-run events/sql/log.sql: flunq_append_new, the append of a batch of new events that the caller
numbers (stream index and rank of each event), in fewer steps than flunq_append without its look-up.
flunq_append keeps its ``p_probe`` parameter for processes of the release before while a rolling
deploy migrates."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0016_append_one_takes_a_row")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
