"""Re-run events/sql/log.sql (flunq_append checks and records the stream's tenant) and fill in
the tenant of existing streams from their first event."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()

BACKFILL = """
UPDATE flunq_streams s SET tenant = (
    SELECT e.tenantid FROM flunq_events e WHERE e.stream = s.name ORDER BY e."version" LIMIT 1)
WHERE s.tenant IS NULL AND s.last_version >= 0;
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0003_append_without_notify"), ("streams", "0002_stream_tenant")]

    operations = [
        migrations.RunSQL(SQL, migrations.RunSQL.noop),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
