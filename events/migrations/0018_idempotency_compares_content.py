"""Re-run events/sql/log.sql: idempotency compares a stored event's attributes with the new one's
(``flunq_same_event``) instead of a content hash that every append computed and stored, so the
column ``content_hash`` goes. ``flunq_append_new``'s ``p_hash`` and ``flunq_new_event``'s ``hash``
stay, ignored, for processes of the release before while a rolling deploy migrates."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("events", "0017_append_new_batches")]

    operations = [
        migrations.RunSQL(SQL, migrations.RunSQL.noop),
        migrations.RemoveField(model_name="event", name="content_hash"),
    ]
