"""Plain functions become gRPC method handlers: decode, authenticate, authorise, run, map errors.

A service is a class whose methods are named after the RPCs of its proto service and marked with
the scope they need, like the ``required_scopes`` of the REST views::

    class EventStore:
        @unary("events:read")
        def GetEvent(self, request, principal): ...          # sync: runs on a database thread

        @unary("events:read")
        async def ReadAll(self, request, principal): ...      # async: waits on the event loop

        @server_stream("events:read")
        async def Subscribe(self, request, principal, context): ...   # async: writes to context

Requests arrive as raw bytes and are decoded here, so a malformed message is INVALID_ARGUMENT
(grpcio would answer INTERNAL). Authentication (``authorization: Bearer``) and the whole body of
a unary call run in one hop to a database thread: Django's ORM is synchronous, and one hop per call
keeps the event loop free and the overhead low. A unary call that waits (``ReadAll`` with
``min_position``) is async: it waits on the event loop and hops to a thread only to read.
A ``ServiceError`` becomes its gRPC status (``grpc_api.errors``); a lost database connection is
UNAVAILABLE; anything else is logged and answered INTERNAL with a message that reveals nothing of
the server.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, close_old_connections
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from access.principal import Principal
from access.tokens import authenticate_token, bearer_token
from flunq_events.errors import InvalidRequest, ServiceError
from grpc_api.errors import PermissionDenied, Unauthenticated, abort

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Rpc:
    scope: str
    streaming: bool


def unary(scope: str) -> Callable[[T], T]:
    """Mark a method ``(self, request, principal) -> response`` as a unary RPC: a sync one runs in a
    database thread; an async one (which waits without holding a thread) on the event loop, and runs
    its database work through ``DatabaseThreads.run`` itself."""

    def mark(func: T) -> T:
        func.rpc = Rpc(scope, streaming=False)
        return func

    return mark


def server_stream(scope: str) -> Callable[[T], T]:
    """Mark an async method ``(self, request, principal, context)`` as a server-streaming RPC."""

    def mark(func: T) -> T:
        func.rpc = Rpc(scope, streaming=True)
        return func

    return mark


class DatabaseThreads:
    """The threads that run synchronous Django work for the server's coroutines."""

    def __init__(self, threads: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc-db")

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        return await sync_to_async(_with_connection, thread_sensitive=False, executor=self.executor)(
            func, *args
        )

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _with_connection(func: Callable[..., T], *args: Any) -> T:
    # What Django does around each request: drop connections that are broken or past their age.
    close_old_connections()
    try:
        return func(*args)
    finally:
        close_old_connections()


def authorize(header: str | None, scope: str) -> Principal:
    """The principal for an ``authorization`` metadata value, checked for ``scope``."""
    token = bearer_token(header)
    if header and token is None:
        raise Unauthenticated("expected metadata 'authorization: Bearer <token>'")
    principal = authenticate_token(token)
    if principal is None:
        if token:
            raise Unauthenticated("unknown or revoked token")
        raise Unauthenticated("an API token is required: metadata 'authorization: Bearer <token>'")
    if not principal.has_scope(scope):
        raise PermissionDenied(f"this token lacks the scope {scope!r}", scope=scope)
    return principal


def _authorization(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else None
    return None


def decode(message_class: type[Message], raw: bytes) -> Message:
    try:
        return message_class.FromString(raw)
    except (DecodeError, ValueError) as exc:
        raise InvalidRequest(
            f"the request is not a valid {message_class.DESCRIPTOR.full_name} message: {exc}",
            error_kind="malformed_message",
        ) from None


async def _fail(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    try:
        if isinstance(exc, ServiceError):
            await abort(context, exc)
        if isinstance(exc, OperationalError | InterfaceError):
            log.warning("database unavailable: %s", exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the database is unavailable; retry later")
    except grpc.aio.AbortError:
        raise
    except Exception as failed:  # the client is gone: there is nobody to tell
        log.info("could not send the error status (%s): %s", exc, failed)
        return
    raise exc


async def _crash(context: grpc.aio.ServicerContext, exc: Exception, rpc_name: str) -> None:
    # grpcio would answer UNKNOWN with the exception's text (SQL, paths): say as little as REST's 500.
    log.error("unexpected error in %s", rpc_name, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")


def _unary_handler(method: Callable, spec: Rpc, request_class: type[Message], response_class, threads):
    def body(request: Message, header: str | None) -> Message:
        return method(request, authorize(header, spec.scope))

    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> Message:
        try:
            request = decode(request_class, raw)
            if inspect.iscoroutinefunction(method):
                return await method(
                    request, await threads.run(authorize, _authorization(context), spec.scope)
                )
            return await threads.run(body, request, _authorization(context))
        except (ServiceError, OperationalError, InterfaceError) as exc:
            await _fail(context, exc)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _crash(context, exc, method.__name__)

    return grpc.unary_unary_rpc_method_handler(handle, response_serializer=response_class.SerializeToString)


def _stream_handler(method: Callable, spec: Rpc, request_class: type[Message], response_class, threads):
    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> None:
        try:
            request = decode(request_class, raw)
            principal = await threads.run(authorize, _authorization(context), spec.scope)
            await method(request, principal, context)
        except (ServiceError, OperationalError, InterfaceError) as exc:
            await _fail(context, exc)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _crash(context, exc, method.__name__)

    return grpc.unary_stream_rpc_method_handler(handle, response_serializer=response_class.SerializeToString)


def method_handlers(servicer: object, service: ServiceDescriptor, threads: DatabaseThreads) -> dict:
    """``{method name: handler}`` for every RPC of ``service``, from ``servicer``'s marked methods."""
    handlers = {}
    for rpc in service.methods:
        method = getattr(servicer, rpc.name)
        spec: Rpc = method.rpc
        if spec.streaming != rpc.server_streaming or rpc.client_streaming:
            raise TypeError(f"{service.full_name}.{rpc.name}: handler kind does not match the proto")
        build = _stream_handler if spec.streaming else _unary_handler
        handlers[rpc.name] = build(
            method,
            spec,
            message_factory.GetMessageClass(rpc.input_type),
            message_factory.GetMessageClass(rpc.output_type),
            threads,
        )
    return handlers
