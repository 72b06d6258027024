"""Small builders for events in tests."""

from __future__ import annotations

import itertools
from typing import Any

from events.cloudevents import NewEvent, from_structured

_ids = itertools.count(1)


def cloudevent(type_: str = "task.completed", **attributes: Any) -> dict[str, Any]:
    """A structured-mode CloudEvent with a fresh id."""
    return {
        "specversion": "1.0",
        "id": f"evt-{next(_ids)}",
        "source": "/tests",
        "type": type_,
        **attributes,
    }


def new_event(type_: str = "task.completed", **attributes: Any) -> NewEvent:
    return from_structured(cloudevent(type_, **attributes))
