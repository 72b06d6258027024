"""The log's functions, sequence and append-only trigger (events/sql/log.sql)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "log.sql").read_text()

REVERSE = """
DROP TRIGGER IF EXISTS flunq_events_append_only ON flunq_events;
DROP FUNCTION IF EXISTS flunq_events_guard();
DROP FUNCTION IF EXISTS flunq_purge_stream(text);
DROP FUNCTION IF EXISTS flunq_append(jsonb, text);
DROP FUNCTION IF EXISTS flunq_horizon();
DROP FUNCTION IF EXISTS flunq_draw_positions(integer);
DROP SEQUENCE IF EXISTS flunq_position_seq;
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial"), ("streams", "0001_initial")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
