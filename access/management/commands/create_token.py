"""``python manage.py create_token NAME [--scope S ...] [--tenant T]``: prints the new token alone."""

from django.core.management.base import BaseCommand, CommandError

from access.models import SCOPES, ApiToken


class Command(BaseCommand):
    help = "Create an API token and print it (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--scope",
            action="append",
            choices=SCOPES,
            help="repeatable; default: events:read and events:write",
        )
        parser.add_argument("--tenant", help="bind the token to one tenant")

    def handle(self, *args, name: str, scope: list[str] | None, tenant: str | None, **options):
        for label, value in (("NAME", name), ("--tenant", tenant)):
            if value is not None and not (0 < len(value) <= 200 and value.isprintable()):
                raise CommandError(f"{label}: 1 to 200 printable characters, got {len(value)} characters")
        if ApiToken.objects.filter(name=name).exists():
            raise CommandError(f"a token named {name!r} exists already")
        _, token = ApiToken.issue(name, scope or ["events:read", "events:write"], tenant)
        self.stdout.write(token)
