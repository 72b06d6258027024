"""``python manage.py seed_schemas``: register the shipped schemas (``schemas/seeds.py``).

Only subjects that do not exist are seeded, so a subject an operator changed, configured or soft
deleted is left alone; running it again does nothing. ``make run`` runs it after migrating.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from schemas import services
from schemas.seeds import SEEDS


def seed() -> list[str]:
    """Register each seed whose subject does not exist; returns the subjects registered."""
    registered = []
    for subject, document in SEEDS.items():
        if services.find_subject(subject) is None:
            services.register(subject, document)
            registered.append(subject)
    return registered


class Command(BaseCommand):
    help = "Register the schemas of the seed's event types for subjects that do not exist yet."

    def handle(self, *args, **options) -> None:
        registered = seed()
        if registered:
            self.stdout.write(f"registered schemas for {', '.join(registered)}")
        else:
            self.stdout.write("seed schemas: nothing to do")
