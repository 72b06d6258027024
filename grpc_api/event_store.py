"""The ``flunq.events.v1.EventStore`` service: appends, reads, streams, and the live subscription.

Each RPC calls the same service and selector functions as the REST views (``events.services.append``
is the one append path; global reads go through ``events.selectors.read_all``, up to the horizon).
"""

from __future__ import annotations

import grpc
from django.conf import settings
from django.db.models import Q

from access import tenancy
from access.principal import Principal
from events import horizon, selectors, services
from flunq_events.errors import InvalidRequest
from grpc_api import convert
from grpc_api.generated.flunq.events.v1 import events_pb2 as pb
from grpc_api.rpc import DatabaseThreads, server_stream, unary
from grpc_api.subscribe import Subscription
from streams.models import Stream
from streams.services import delete_stream, stream_as_dict


class EventStore:
    def __init__(self, threads: DatabaseThreads) -> None:
        self.threads = threads

    @unary("events:write")
    def AppendToStream(self, request: pb.AppendToStreamRequest, principal: Principal) -> pb.AppendResponse:
        stream = convert.text(request.stream, "stream", required=True)
        events = convert.new_events(request.events)
        result = services.append(
            events,
            stream=stream,
            expected_version=convert.expected_version(request),
            tenant=tenancy.tenant_of(principal),
        )
        return convert.append_response(result)

    @unary("events:write")
    def Publish(self, request: pb.PublishRequest, principal: Principal) -> pb.AppendResponse:
        if not request.HasField("event"):
            raise InvalidRequest("event is required", field="event")
        events = [convert.new_event(request.event)]
        return convert.append_response(services.append(events, tenant=tenancy.tenant_of(principal)))

    @unary("events:write")
    def PublishBatch(self, request: pb.PublishBatchRequest, principal: Principal) -> pb.AppendResponse:
        events = convert.new_events(request.events)
        result = services.append(
            events, expected_version=convert.expected_version(request), tenant=tenancy.tenant_of(principal)
        )
        return convert.append_response(result)

    @unary("events:read")
    def GetEvent(self, request: pb.GetEventRequest, principal: Principal) -> pb.RecordedEvent:
        event_id = convert.text(request.id, "id", required=True)
        return convert.recorded(
            tenancy.get_event(principal, event_id, convert.optional_text(request, "source"))
        )

    @unary("events:read")
    def ReadStream(self, request: pb.ReadStreamRequest, principal: Principal) -> pb.ReadStreamResponse:
        stream = convert.text(request.stream, "stream", required=True)
        if request.direction not in (pb.DIRECTION_FORWARD, pb.DIRECTION_BACKWARD):
            raise InvalidRequest(f"direction {request.direction} is not defined", field="direction")
        from_version = (
            convert.non_negative(request.from_version, "from_version")
            if request.HasField("from_version")
            else None
        )
        tenancy.check_stream(principal, stream)
        page = selectors.read_stream(
            stream,
            from_version=from_version,
            limit=convert.limit(request.limit),
            backwards=request.direction == pb.DIRECTION_BACKWARD,
        )
        return pb.ReadStreamResponse(
            stream=stream,
            events=[convert.recorded(e) for e in tenancy.visible_events(principal, page.events)],
            next_version=page.next_version,
        )

    @unary("events:read")
    async def ReadAll(self, request: pb.ReadAllRequest, principal: Principal) -> pb.ReadAllResponse:
        after = convert.non_negative(request.after, "after")
        limit = convert.limit(request.limit)
        filter_ = tenancy.scope_filter(principal, convert.event_filter(request.filter))
        upper = None
        if convert.non_negative(request.min_position, "min_position"):
            # Awaited between looks, not slept in a database thread: a few waiting reads (or reads
            # their clients gave up on) would otherwise hold every thread, and every call with them.
            upper = await horizon.wait_for_async(
                request.min_position,
                settings.MIN_POSITION_WAIT_SECONDS,
                lambda: self.threads.run(horizon.current),
            )
        # The page and its messages are built in the thread: not on the event loop the streams share.
        return await self.threads.run(_read_all, after, limit, filter_, upper)

    @server_stream("events:read")
    async def Subscribe(
        self, request: pb.SubscribeRequest, principal: Principal, context: grpc.aio.ServicerContext
    ) -> None:
        await Subscription(request, principal, context, self.threads).run()

    @unary("events:read")
    def GetStream(self, request: pb.GetStreamRequest, principal: Principal) -> pb.StreamInfo:
        stream = convert.text(request.stream, "stream", required=True)
        tenancy.check_stream(principal, stream)
        return convert.stream_info(stream_as_dict(selectors.get_stream(stream, include_deleted=True)))

    @unary("events:read")
    def ListStreams(self, request: pb.ListStreamsRequest, principal: Principal) -> pb.ListStreamsResponse:
        # The same query as GET /api/v1/streams.
        limit = convert.limit(request.limit)
        streams = tenancy.visible_streams(principal, Stream.objects.all())
        if not request.include_deleted:
            streams = streams.filter(deleted_at__isnull=True)
        if (category := convert.optional_text(request, "category")) is not None:
            streams = streams.filter(category=category)
        if (prefix := convert.optional_text(request, "prefix")) is not None:
            streams = streams.filter(name__startswith=prefix)
        if (after := convert.optional_text(request, "after")) is not None:
            streams = streams.filter(Q(name__gt=after))
        page = list(streams.order_by("name")[:limit])
        return pb.ListStreamsResponse(
            streams=[convert.stream_info(stream_as_dict(s)) for s in page],
            next_after=page[-1].name if len(page) == limit else None,
        )

    @unary("admin")
    def DeleteStream(self, request: pb.DeleteStreamRequest, principal: Principal) -> pb.StreamInfo:
        stream = convert.text(request.stream, "stream", required=True)
        tenancy.check_stream(principal, stream)
        return convert.stream_info(stream_as_dict(delete_stream(stream)))


def _read_all(after: int, limit: int, filter_, upper: int | None) -> pb.ReadAllResponse:
    page = selectors.read_all(after, limit, filter_, horizon=upper)
    return pb.ReadAllResponse(
        events=[convert.recorded(e) for e in page.events], next_after=page.next_after, horizon=page.horizon
    )
