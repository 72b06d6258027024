"""Stream names compare as bytes (``COLLATE "C"``), as the log's stream column does (migration
``events`` 0019): the same order on every server, the order in which appends lock streams, and
the lookup of every append without the locale's ``strcoll``."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("streams", "0004_metadata_read_back_as_accepted")]

    operations = [
        migrations.AlterField(
            model_name="stream",
            name="name",
            field=models.TextField(db_collation="C", primary_key=True, serialize=False),
        ),
    ]
