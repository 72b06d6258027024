"""The ``flunq.events.v1.Subscriptions`` service: the consumer-group endpoints of pull subscriptions.

Fetch, Ack and Nack do what ``POST /api/v1/subscriptions/{id}/fetch|ack|nack`` do, through the same
functions: ``services.get_subscription`` (only subscriptions the caller's tenant may see) and
``subscriptions.pull``.
"""

from __future__ import annotations

from access.principal import Principal
from flunq_events.errors import InvalidRequest
from grpc_api import convert
from grpc_api.generated.flunq.events.v1 import events_pb2 as pb
from grpc_api.rpc import DatabaseThreads, unary
from subscriptions import inputs, pull, services

DEFAULT_MAX_EVENTS = 100
_ACTIONS = {pb.NACK_ACTION_RETRY: "retry", pb.NACK_ACTION_PARK: "park"}


class Subscriptions:
    def __init__(self, threads: DatabaseThreads) -> None:
        self.threads = threads

    @unary("events:read")
    def Fetch(self, request: pb.FetchRequest, principal: Principal) -> pb.FetchResponse:
        subscription = services.get_subscription(principal, request.subscription_id)
        consumer = pull.check_consumer(request.consumer)
        # proto3 cannot tell 0 from unset: 0 means the REST default, like the other limits here.
        max_events = inputs.integer(
            request.max_events or DEFAULT_MAX_EVENTS, "max_events", minimum=1, maximum=pull.MAX_FETCH
        )
        lease = (
            inputs.lease_seconds(request.lease_seconds)
            if request.HasField("lease_seconds")
            else subscription.lease_seconds
        )
        messages = pull.fetch(subscription, consumer=consumer, max_events=max_events, lease_seconds=lease)
        return pb.FetchResponse(
            messages=[
                pb.FetchedMessage(
                    ack_id=m.ack_id,
                    attempt=m.attempt,
                    replay_job=m.replay_job,
                    event=convert.recorded(m.event),
                )
                for m in messages
            ],
            state=subscription.state,
            lease_seconds=lease,
        )

    @unary("events:read")
    def Ack(self, request: pb.AckRequest, principal: Principal) -> pb.AckResponse:
        subscription = services.get_subscription(principal, request.subscription_id)
        result = pull.ack(
            subscription,
            consumer=pull.check_consumer(request.consumer),
            ack_ids=pull.parse_ack_ids(list(request.ack_ids)),
        )
        return pb.AckResponse(acked=result["acked"], stale=result["stale"])

    @unary("events:read")
    def Nack(self, request: pb.NackRequest, principal: Principal) -> pb.NackResponse:
        subscription = services.get_subscription(principal, request.subscription_id)
        consumer = pull.check_consumer(request.consumer)
        ack_ids = pull.parse_ack_ids(list(request.ack_ids))
        action = _ACTIONS.get(request.action)
        if action is None:  # an enum number this server does not know
            raise InvalidRequest(f"action must be RETRY or PARK, got {request.action}", field="action")
        result = pull.nack(
            subscription,
            consumer=consumer,
            ack_ids=ack_ids,
            reason=inputs.text(request.reason or None, "reason", maximum=2000) or "",
            action=action,
            delay_seconds=inputs.number(
                request.delay_seconds, "delay_seconds", minimum=0, maximum=inputs.MAX_DELAY
            )
            if request.HasField("delay_seconds")
            else None,
        )
        return pb.NackResponse(nacked=result["nacked"], stale=result["stale"])
