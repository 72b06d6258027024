"""The log's identifiers that an index or the append's lock order compares (stream, id, source,
type, tenantid, workflowid, correlationid) compare as bytes (``COLLATE "C"``): the same order on
every server, whatever its locale, the order in which the service sorts streams to lock them,
prefix matches (``type LIKE 'workflow.%'``) served by the plain index, and index comparisons
without the locale's ``strcoll`` (docs/benchmarks.md, finding 22). For UTF-8, byte order is code
point order. One ``ALTER TABLE``, so that each index is rebuilt once: on a large log this holds
the table's lock for as long as building its indexes takes."""

from django.db import migrations, models

COLUMNS = ("stream", "id", "source", "type", "tenantid", "workflowid", "correlationid")


def _alter(collation: str) -> str:
    return "ALTER TABLE flunq_events " + ", ".join(
        f'ALTER COLUMN "{column}" TYPE text COLLATE "{collation}"' for column in COLUMNS
    )


class Migration(migrations.Migration):
    dependencies = [("events", "0018_idempotency_compares_content")]

    operations = [
        migrations.RunSQL(
            _alter("C"),
            _alter("default"),
            state_operations=[
                migrations.AlterField("event", "stream", models.TextField(db_collation="C")),
                migrations.AlterField(
                    "event", "event_id", models.TextField(db_collation="C", db_column="id")
                ),
                migrations.AlterField("event", "source", models.TextField(db_collation="C")),
                migrations.AlterField("event", "type", models.TextField(db_collation="C")),
                *(
                    migrations.AlterField(
                        "event", name, models.TextField(blank=True, db_collation="C", null=True)
                    )
                    for name in ("tenantid", "workflowid", "correlationid")
                ),
            ],
        )
    ]
