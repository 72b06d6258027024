"""``manage.py relay``: publish every committed event to the configured brokers, in order.

    python manage.py relay                      # every backend in BACKEND, one thread each
    python manage.py relay --backend kafka      # one backend
    python manage.py relay --backend nats --rewind-to 1200                  # from position 1200
    python manage.py relay --backend redis --rewind-to 2026-01-01T00:00:00Z --rewind-only

A second instance waits as a standby and takes over when the active one dies. SIGTERM or Ctrl-C
lets each relay finish its batch, then exits.
"""

from __future__ import annotations

import faulthandler
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from flunq_events.errors import ServiceError
from relay.backends import REGISTRY, get_backend
from relay.services import parse_target, rewind
from relay.worker import Relay


class Command(BaseCommand):
    help = "Relay committed events to the brokers in BACKEND (Redis Streams, Kafka, NATS JetStream)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--backend", action="append", choices=sorted(REGISTRY),
                            help="backend alias (repeatable); default: every one in BACKEND")  # fmt: skip
        parser.add_argument("--rewind-to", metavar="POSITION|TIME",
                            help="publish again from this position or RFC 3339 time")  # fmt: skip
        parser.add_argument("--rewind-only", action="store_true", help="rewind, then exit")

    def handle(self, *args, backend=None, rewind_to=None, rewind_only=False, **options) -> None:
        aliases = backend or list(settings.BACKENDS)
        if not aliases:
            raise CommandError("no backend: set BACKEND (redis, kafka, nats) or pass --backend")
        if rewind_only and rewind_to is None:
            raise CommandError("--rewind-only needs --rewind-to")
        if rewind_to is not None:
            try:
                target = parse_target(rewind_to)
                for alias in aliases:
                    row = rewind(alias, target)
                    self.stdout.write(
                        f"{alias}: rewound, next event published is after position {row.position}"
                    )
            except ServiceError as exc:
                raise CommandError(exc.message) from exc
            if rewind_only:
                return
        connection.close()  # each relay thread opens its own

        stop = threading.Event()

        def on_signal(signum, frame) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        # `kill -USR1 <pid>` prints every thread's stack: where a relay waits, without stopping it.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        threads = [
            threading.Thread(target=Relay(get_backend(alias)).run, args=(stop,), name=f"relay-{alias}")
            for alias in aliases
        ]
        for thread in threads:
            thread.start()
        # Wait in short slices: signal handlers run only between bytecodes of the main thread.
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(0.2)
            if not stop.is_set() and not all(thread.is_alive() for thread in threads):
                stop.set()  # one relay crashed: stop the rest so the supervisor restarts us whole
