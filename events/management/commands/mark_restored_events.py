"""``python manage.py mark_restored_events``: run once after restoring a logical dump of the log
into another PostgreSQL cluster (docs/deploy.md, "Backups and restores")."""

from django.core.management.base import BaseCommand
from django.db import connection, transaction


class Command(BaseCommand):
    help = (
        "After a logical restore into another cluster: give the restored events an xid older than "
        "any transaction here, so that global readers see them (prints how many it marked)."
    )

    def handle(self, *args, **options):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT flunq_mark_restored_events()")
            marked = cursor.fetchone()[0]
        self.stdout.write(str(marked))
