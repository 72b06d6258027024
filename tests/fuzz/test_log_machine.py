"""A Hypothesis state machine over the log, against PostgreSQL, checked against a model.

Rules: append (right, stale, ``any``, ``no_stream``, ``stream_exists`` expected versions), resend a
stored batch (idempotent) or reuse its ids with other content (conflict), read streams forwards
and backwards from any version, read the global log from any position, soft-delete and recreate
streams. After every step: the database holds exactly the model's events, positions strictly
increase in append order, and each stream's versions are dense from 0.

Each run of the machine writes under a source and stream names of its own, so runs never see each
other's events and need no cleanup between them.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field

import orjson
import pytest
from django.db import connection
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from events import horizon, selectors, services
from events.cloudevents import NewEvent, from_structured
from flunq_events.errors import DuplicateEventConflict, NotFound, StreamDeleted, WrongExpectedVersion
from streams.services import create_stream, delete_stream

pytestmark = pytest.mark.django_db(transaction=True)
EXPECTATIONS = ["any", "right", "stale", "no_stream", "stream_exists"]


@dataclass
class StreamModel:
    last_version: int = -1  # versions are never reused, also across delete and recreate
    visible_from: int = 0  # stream reads hide versions before a recreate
    deleted: bool = False
    created: bool = False


@dataclass
class Stored:
    id: str
    stream: str
    version: int
    position: int
    data: dict


@dataclass
class Batch:
    stream: str
    events: list[NewEvent]
    positions: list[int] = field(default_factory=list)


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.run = uuid.uuid4().hex[:10]
        self.source = f"/fuzz/{self.run}"
        self.names = [f"fz{self.run}-{index}" for index in range(3)]
        self.streams = {name: StreamModel() for name in self.names}
        self.log: list[Stored] = []  # in position order
        self.batches: list[Batch] = []
        self.ids = itertools.count()

    # --- helpers ----------------------------------------------------------------------------

    def new_events(self, count: int) -> list[NewEvent]:
        return [
            from_structured(
                {
                    "specversion": "1.0",
                    "id": f"e{next(self.ids)}",
                    "source": self.source,
                    "type": "fuzz.appended",
                    "data": {"n": index},
                }
            )
            for index in range(count)
        ]

    def expected_for(self, kind: str, model: StreamModel) -> tuple[str, bool]:
        """(expected_version argument, whether the append should pass the version check)."""
        last = model.last_version
        if kind == "any":
            return "any", True
        if kind == "right":
            return (str(last) if last >= 0 else "no_stream"), True
        if kind == "stale":
            return str(last + 1 if last < 1 else last - 1), False
        if kind == "no_stream":
            return "no_stream", last == -1
        return "stream_exists", last >= 0

    # --- rules ------------------------------------------------------------------------------

    @rule(index=st.integers(0, 2), count=st.integers(1, 3), kind=st.sampled_from(EXPECTATIONS))
    def append(self, index: int, count: int, kind: str) -> None:
        name = self.names[index]
        model = self.streams[name]
        expected, passes = self.expected_for(kind, model)
        events = self.new_events(count)
        try:
            result = services.append(events, stream=name, expected_version=expected)
        except StreamDeleted:
            assert model.deleted
            return
        except WrongExpectedVersion as exc:
            assert not model.deleted and not passes, (kind, expected, model)
            assert exc.extra["actual_version"] == model.last_version
            return
        assert not model.deleted and passes, (kind, expected, model)
        assert not result.duplicate
        positions = [item.position for item in result.events]
        assert positions == sorted(positions) and len(set(positions)) == count
        assert not self.log or positions[0] > self.log[-1].position
        assert [item.version for item in result.events] == list(
            range(model.last_version + 1, model.last_version + 1 + count)
        )
        for event, item in zip(events, result.events, strict=True):
            self.log.append(Stored(event.id, name, item.version, item.position, event.data))
        model.last_version += count
        model.created = True
        self.batches.append(Batch(name, events, positions))

    @precondition(lambda self: self.batches)
    @rule(data=st.data(), kind=st.sampled_from(EXPECTATIONS))
    def resend(self, data, kind: str) -> None:
        # Idempotency comes before the version check and the deletion: a retry always gets the
        # stored originals, whatever happened to the stream since.
        batch = data.draw(st.sampled_from(self.batches))
        expected, _ = self.expected_for(kind, self.streams[batch.stream])
        result = services.append(batch.events, stream=batch.stream, expected_version=expected)
        assert result.duplicate
        assert [item.position for item in result.events] == batch.positions

    @precondition(lambda self: self.batches)
    @rule(data=st.data())
    def reuse_ids_with_other_content(self, data) -> None:
        batch = data.draw(st.sampled_from(self.batches))
        changed = [from_structured({**event.attributes(), "data": {"other": True}}) for event in batch.events]
        with pytest.raises(DuplicateEventConflict):
            services.append(changed, stream=batch.stream)

    @rule(index=st.integers(0, 2), data=st.data())
    def read_stream(self, index: int, data) -> None:
        name = self.names[index]
        model = self.streams[name]
        backwards = data.draw(st.booleans())
        from_version = data.draw(st.none() | st.integers(0, max(model.last_version + 1, 0)))
        limit = data.draw(st.integers(1, 5))
        if not model.created:
            with pytest.raises(NotFound):
                selectors.read_stream(name, from_version=from_version, limit=limit, backwards=backwards)
            return
        if model.deleted:
            with pytest.raises(StreamDeleted):
                selectors.read_stream(name, from_version=from_version, limit=limit, backwards=backwards)
            return
        page = selectors.read_stream(name, from_version=from_version, limit=limit, backwards=backwards)
        visible = [s for s in self.log if s.stream == name and s.version >= model.visible_from]
        if backwards:
            visible = [s for s in reversed(visible) if from_version is None or s.version <= from_version]
        else:
            visible = [s for s in visible if from_version is None or s.version >= from_version]
        assert [(e["id"], e["version"], e["position"]) for e in page.events] == [
            (s.id, s.version, s.position) for s in visible[:limit]
        ]
        # data comes back as the stored JSON text, passed through to the renderer untouched
        assert [orjson.loads(orjson.dumps(e["data"])) for e in page.events] == [
            s.data for s in visible[:limit]
        ]

    @precondition(lambda self: self.log)
    @rule(data=st.data())
    def read_all(self, data) -> None:
        # Drawn as an index (positions differ between runs; draws must not depend on them).
        start = data.draw(st.integers(0, len(self.log)))
        after = self.log[start - 1].position if start else self.log[0].position - 1
        limit = data.draw(st.integers(1, 10))
        # Another session anywhere in the cluster may hold the horizon back for a moment; what
        # the page claims to have read up to is what it is checked against.
        horizon.wait_for(self.log[-1].position, 10)
        page = selectors.read_all(after, limit, selectors.EventFilter(source=self.source))
        expected = [s for s in self.log if after < s.position <= page.horizon][:limit]
        assert [(e["id"], e["stream"], e["version"], e["position"]) for e in page.events] == [
            (s.id, s.stream, s.version, s.position) for s in expected
        ]
        positions = [e["position"] for e in page.events]
        assert positions == sorted(set(positions))

    @rule(index=st.integers(0, 2))
    def delete(self, index: int) -> None:
        name = self.names[index]
        model = self.streams[name]
        if not model.created:
            with pytest.raises(NotFound):
                delete_stream(name)
            return
        delete_stream(name)  # deleting twice is allowed
        model.deleted = True

    @rule(index=st.integers(0, 2))
    def recreate(self, index: int) -> None:
        name = self.names[index]
        model = self.streams[name]
        if model.created and not model.deleted:
            return  # a live stream: POST answers 409, covered by the REST tests
        _, recreated = create_stream(name)
        assert recreated == model.created
        model.created, model.deleted = True, False
        model.visible_from = model.last_version + 1

    # --- the database equals the model ------------------------------------------------------

    @invariant()
    def database_equals_model(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                'SELECT id, stream, "version", "position" FROM flunq_events WHERE source = %s ORDER BY "position"',
                [self.source],
            )
            rows = cursor.fetchall()
        assert rows == [(s.id, s.stream, s.version, s.position) for s in self.log]
        positions = [row[3] for row in rows]
        assert all(a < b for a, b in itertools.pairwise(positions))
        for name, model in self.streams.items():
            versions = sorted(row[2] for row in rows if row[1] == name)
            assert versions == list(range(model.last_version + 1))


def test_log_behaves_like_its_model():
    run_state_machine_as_test(
        LogMachine,
        settings=settings(
            max_examples=20,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
