"""Building CloudEvent messages and reading gRPC errors in the tests."""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import datetime
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from grpc_api.generated.io.cloudevents.v1 import cloudevents_pb2 as ce


def cloudevent(
    id: str, type: str = "task.completed", source: str = "/test", data: Any = None, **attributes
) -> ce.CloudEvent:
    message = ce.CloudEvent(id=id, source=source, spec_version="1.0", type=type)
    for name, value in attributes.items():
        target = message.attributes[name]
        if isinstance(value, datetime):
            target.ce_timestamp.FromDatetime(value)
        elif isinstance(value, bool):
            target.ce_boolean = value
        elif isinstance(value, int):
            target.ce_integer = value
        elif isinstance(value, bytes):
            target.ce_bytes = value
        else:
            target.ce_string = value
    if data is not None:
        message.text_data = json.dumps(data)
    return message


def attribute(message: ce.CloudEvent, name: str) -> Any:
    value = message.attributes[name]
    return getattr(value, value.WhichOneof("attr"))


class Failure:
    """A failed call: its status code, the REST error body (``flunq-error``) and the ErrorInfo."""

    def __init__(self, exc: grpc.RpcError) -> None:
        self.code = exc.code()
        self.message = exc.details()
        trailers = dict(exc.trailing_metadata() or ())
        self.body = json.loads(trailers["flunq-error"]) if "flunq-error" in trailers else {}
        self.info = None
        status = rpc_status.from_call(exc)
        if status is not None:
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    self.info = info


def failure(call, *args, **kwargs) -> Failure:
    try:
        call(*args, **kwargs)
    except grpc.RpcError as exc:
        return Failure(exc)
    raise AssertionError("the call succeeded")


class Reader:
    """Reads a server stream on a thread into a queue, so a test waits with a bound, never hangs."""

    def __init__(self, call) -> None:
        self.call = call
        self.messages: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for message in self.call:
                self.messages.put(message)
        except grpc.RpcError as exc:
            self.messages.put(exc)

    def next(self, timeout: float = 120.0, skip_checkpoints: bool = True):
        while True:
            item = self.messages.get(timeout=timeout)
            if isinstance(item, grpc.RpcError):
                raise item
            if skip_checkpoints and item.WhichOneof("message") == "checkpoint":
                continue
            return item

    def events(self, count: int) -> list:
        out = []
        while len(out) < count:
            message = self.next()
            if message.WhichOneof("message") == "event":
                out.append(message.event)
        return out

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(10)


def wait_for_horizon(client, position: int, deadline: float = 120.0) -> None:
    """Wait until the safe horizon reaches ``position``.

    The horizon is cluster-wide: a transaction left open anywhere on the PostgreSQL server (by
    another test run, say) holds it back, so reads of the global log wait here, with a bound.
    """
    from grpc_api.generated.flunq.events.v1 import events_pb2 as pb

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        page = client.events.ReadAll(
            pb.ReadAllRequest(after=max(0, position - 1), limit=1, min_position=position)
        )
        if page.horizon >= position:
            return
    raise AssertionError(f"the horizon did not reach {position} in {deadline} s")
