"""The seed's event types ship with schemas that accept the events flunq sends."""

from __future__ import annotations

import itertools

import pytest
from django.core.management import call_command

from events import services as events
from events.cloudevents import from_structured
from flunq_events.errors import ValidationFailed
from schemas import services
from schemas.seeds import SEEDS

pytestmark = pytest.mark.django_db(transaction=True)
_ids = itertools.count(1)

SAMPLES = {
    "workflow.created": {"workflow_id": "wf-1", "name": "orders", "definition": {"do": []}},
    "workflow.updated": {"workflow_id": "wf-1", "changes": {"name": "orders-v2"}},
    "workflow.deleted": {"workflow_id": "wf-1", "reason": "retired"},
    "workflow.execution.started": {"execution_id": "ex-1", "input": {"order": 42}},
    "workflow.execution.completed": {"execution_id": "ex-1", "output": [1, 2], "duration_ms": 12.5},
    "workflow.execution.failed": {"execution_id": "ex-1", "error": {"message": "boom", "code": 500}},
    "task.started": {"task_id": "t-1", "task_name": "charge", "attempt": 0},
    "task.completed": {"task_id": "t-1", "output": {"ok": True}, "extra": "open content"},
    "task.failed": {"task_id": "t-1", "error": "card declined", "retryable": False},
    "task.retried": {"task_id": "t-1", "attempt": 2, "delay_ms": 1000},
}
WRONG = {
    "workflow.created": {"name": 7},
    "workflow.execution.failed": {"execution_id": "ex-1"},
    "task.failed": {"error": {"code": 1}},
    "task.retried": {"attempt": -1},
    "task.started": {"started_at": 12},
}


def event(type_: str, data) -> object:
    return from_structured({"specversion": "1.0", "id": f"s-{next(_ids)}", "source": "/flunq/worker",
                            "type": type_, "executionid": "ex-1", "data": data})  # fmt: skip


def test_seed_registers_each_type_once_and_the_schemas_fit_flunq_events():
    call_command("seed_schemas")
    assert sorted(s.name for s in services.list_subjects()) == sorted(SEEDS)
    assert set(SAMPLES) == set(SEEDS)
    call_command("seed_schemas")  # idempotent
    assert all(services.get_version(name, "latest").version == 1 for name in SEEDS)

    events.append([event(type_, data) for type_, data in SAMPLES.items()])
    for type_, data in WRONG.items():
        with pytest.raises(ValidationFailed):
            events.append([event(type_, data)])


def test_seed_leaves_existing_subjects_alone():
    services.set_subject_config("task.completed", compatibility="NONE")  # configured, no versions yet
    services.register("workflow.deleted", {"type": "object"})
    services.delete_subject("workflow.deleted")  # soft deleted by an operator
    call_command("seed_schemas")
    assert services.find_subject("task.completed").versions.count() == 0
    assert (
        services.versions_of(services.find_subject("workflow.deleted"), include_deleted=True)[-1].version == 1
    )
    assert services.get_version("task.failed", "latest").schema.document == SEEDS["task.failed"]
