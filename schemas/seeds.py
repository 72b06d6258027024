"""The schemas the service ships with: one per event type of the flunq workflow engine.

Open content models: unknown properties are allowed (producers may add fields without a new
schema version), and only what a consumer cannot do without is required. Identifiers that travel
as CloudEvents attributes (``workflowid``, ``executionid``, ``taskid``) may be repeated in the
data; they are not required there. Registered by ``python manage.py seed_schemas`` (run by
``make run``) for subjects that do not exist yet.
"""

from __future__ import annotations

from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"

_ID = {"type": "string", "minLength": 1, "maxLength": 200}
_TEXT = {"type": "string", "maxLength": 10_000}
_TIME = {"type": "string", "format": "date-time"}
_ERROR = {
    "description": "what went wrong: a message, or an object with at least a message",
    "anyOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "code": {"type": ["string", "integer"]},
                "type": {"type": "string"},
                "details": {},
            },
            "required": ["message"],
        },
    ],
}


def _object(title: str, properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "title": title,
        "type": "object",
        "properties": properties,
    }
    if required:
        schema["required"] = required
    return schema


_WORKFLOW = {
    "workflow_id": _ID,
    "name": {"type": "string", "maxLength": 500},
    "description": _TEXT,
    "version": {"type": ["string", "integer"]},
    "definition": {"type": "object", "description": "the workflow definition (e.g. Serverless Workflow DSL)"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "metadata": {"type": "object"},
    "tenant_id": _ID,
    "created_by": {"type": "string"},
    "created_at": _TIME,
    "updated_at": _TIME,
}
_EXECUTION = {
    "workflow_id": _ID,
    "execution_id": _ID,
    "input": {"description": "the execution's input (any JSON)"},
    "output": {"description": "the execution's output (any JSON)"},
    "status": {"type": "string"},
    "started_at": _TIME,
    "completed_at": _TIME,
    "failed_at": _TIME,
    "duration_ms": {"type": "number", "minimum": 0},
    "metadata": {"type": "object"},
}
_TASK = {
    "workflow_id": _ID,
    "execution_id": _ID,
    "task_id": _ID,
    "task_name": {"type": "string", "maxLength": 500},
    "task_type": {"type": "string", "maxLength": 200},
    "input": {"description": "the task's input (any JSON)"},
    "output": {"description": "the task's output (any JSON)"},
    "attempt": {"type": "integer", "minimum": 0},
    "max_attempts": {"type": "integer", "minimum": 0},
    "started_at": _TIME,
    "completed_at": _TIME,
    "duration_ms": {"type": "number", "minimum": 0},
    "metadata": {"type": "object"},
}

SEEDS: dict[str, dict[str, Any]] = {
    "workflow.created": _object("A workflow was created", _WORKFLOW),
    "workflow.updated": _object(
        "A workflow was updated",
        {**_WORKFLOW, "changes": {"type": "object", "description": "changed fields"}},
    ),
    "workflow.deleted": _object(
        "A workflow was deleted", {**_WORKFLOW, "deleted_at": _TIME, "reason": _TEXT}
    ),
    "workflow.execution.started": _object("A workflow execution started", _EXECUTION),
    "workflow.execution.completed": _object("A workflow execution completed", _EXECUTION),
    "workflow.execution.failed": _object(
        "A workflow execution failed", {**_EXECUTION, "error": _ERROR}, ["error"]
    ),
    "task.started": _object("A task started", _TASK),
    "task.completed": _object("A task completed", _TASK),
    "task.failed": _object(
        "A task failed", {**_TASK, "error": _ERROR, "retryable": {"type": "boolean"}}, ["error"]
    ),
    "task.retried": _object(
        "A task is retried",
        {**_TASK, "error": _ERROR, "delay_ms": {"type": "number", "minimum": 0}, "next_attempt_at": _TIME},
        ["attempt"],
    ),
}
