"""``python manage.py deliver``: the subscriptions worker (webhooks, enqueueing, replays).

A thin loop around ``subscriptions.delivery.Deliverer.step``: step while there is work, otherwise
wait for a NOTIFY (or the poll interval, or the next retry coming due). Several instances may run
at once; they share streams through row leases taken with SKIP LOCKED. SIGTERM/SIGINT finish the
current step and exit.
"""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from subscriptions import queue
from subscriptions.delivery import Deliverer
from subscriptions.listener import Listener

logger = logging.getLogger("subscriptions.deliver")


class Command(BaseCommand):
    help = "Deliver subscriptions: webhooks with retries and the dead letter queue, replays, enqueueing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--concurrency", type=int, default=None, help="parallel webhook requests")
        parser.add_argument("--once", action="store_true", help="run steps until idle, then exit")

    def handle(self, *args, concurrency: int | None = None, once: bool = False, **options) -> None:
        if concurrency is not None and not 1 <= concurrency <= 512:
            raise CommandError(f"--concurrency: 1 to 512 (as DELIVER_CONCURRENCY), got {concurrency}")
        # One INFO line per webhook request from httpx would drown the worker's own log.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        deliverer = Deliverer(concurrency=concurrency)
        listener = Listener()
        logger.info("deliver worker %s started", deliverer.owner)
        try:
            while not stop.is_set():
                try:
                    more = deliverer.step()
                except DatabaseError as exc:
                    # A deadlock victim or a lost connection: log, reconnect, carry on.
                    logger.warning("step failed: %s", exc)
                    connection.close()
                    more = False
                if more:
                    continue
                if once:
                    break
                due = queue.due_in()
                timeout = (
                    settings.DELIVER_POLL_SECONDS if due is None else min(due, settings.DELIVER_POLL_SECONDS)
                )
                # Short slices, so a SIGTERM is noticed promptly even while waiting.
                while timeout > 0 and not stop.is_set():
                    if listener.wait(min(timeout, 0.5)):
                        break
                    timeout -= 0.5
        finally:
            listener.close()
            deliverer.close()
            logger.info("deliver worker %s stopped", deliverer.owner)
