"""Operator actions on sinks: rewind a sink so the relay publishes again from a position or a time.

A rewind sets the checkpoint and bumps its ``epoch``; a running relay notices at its next
checkpoint update (the compare-and-set fails) and continues from the new position.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F

from events import horizon
from events.cloudevents import parse_time
from events.selectors import position_at
from flunq_events.errors import InvalidRequest
from flunq_events.numbers import is_digits
from relay.models import Checkpoint


def parse_target(text: str) -> int:
    """``POSITION`` (publish again from that position on) or an RFC 3339 time -> checkpoint."""
    text = text.strip()
    if is_digits(text, 19):
        return max(0, int(text) - 1)
    try:
        moment: datetime = parse_time(text, "rewind_to")
    except ValueError as exc:
        raise InvalidRequest(
            f"rewind target must be a position (integer >= 0) or an RFC 3339 time, got {text!r}",
            field="rewind_to",
        ) from exc
    return position_at(moment)


def rewind(sink: str, checkpoint: int) -> Checkpoint:
    """Set ``sink``'s checkpoint to ``checkpoint``: events after it are published again. At most to
    the end of the log (``horizon.log_end``), as a subscription's checkpoint and Kafka's offset
    resets: a checkpoint past it would skip every event appended until the log reached it."""
    if checkpoint < 0:
        raise InvalidRequest(f"checkpoint must be >= 0, got {checkpoint}", field="rewind_to")
    checkpoint = min(checkpoint, horizon.log_end())
    with transaction.atomic():
        row, _ = Checkpoint.objects.select_for_update().get_or_create(sink=sink)
        Checkpoint.objects.filter(pk=row.pk).update(position=checkpoint, epoch=F("epoch") + 1)
    row.refresh_from_db()
    return row
