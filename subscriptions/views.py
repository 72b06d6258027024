"""REST endpoints of subscriptions, pull consumer groups, dead letters and replays.

Scopes: reading (subscriptions, dead letters, replays) and consuming (fetch/ack/nack) need
``events:read``; creating, changing and deleting subscriptions ``events:write``; redriving or
discarding dead letters, replaying and rewinding ``admin``. A tenant-bound token sees only
subscriptions whose filter is its tenant, and the subscriptions it creates are forced to it.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from events.cloudevents import parse_time
from events.selectors import is_type_pattern
from flunq_events import params
from flunq_events.errors import InvalidRequest
from flunq_events.openapi import ErrorSerializer
from subscriptions import inputs, pull, selectors, services
from subscriptions.models import DeadLetter, Subscription

ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}
CREATE_FIELDS = ("name", "kind", "url", "filter", "start", "retry", "lease_seconds", "state")
PATCH_FIELDS = ("name", "url", "filter", "retry", "lease_seconds", "state", "rewind")
DEAD_LETTER_FILTERS = ("stream", "type", "reason", "since", "until")


def _principal(request):
    return request.user


def _require_admin(request) -> None:
    if not request.user.has_scope("admin"):
        raise exceptions.PermissionDenied("this token lacks the scope 'admin'")


def _body(request) -> object:
    # An empty body is an empty object for endpoints whose fields are all optional.
    return request.data if request.body else {}


@extend_schema(tags=["subscriptions"])
class SubscriptionsView(APIView):
    required_scopes = {"GET": "events:read", "POST": "events:write"}

    @extend_schema(
        operation_id="subscriptions_list",
        summary="List subscriptions with their progress",
        parameters=[
            OpenApiParameter("kind", str),
            OpenApiParameter("state", str),
            OpenApiParameter("name", str),
            OpenApiParameter("limit", int),
        ],
        responses={200: dict, **ERRORS},
    )
    def get(self, request):
        query = request.query_params
        params.reject_unknown(query, ["kind", "state", "name", "limit", "offset"])
        subscriptions = services.visible(_principal(request))
        if (kind := query.get("kind")) is not None:
            subscriptions = subscriptions.filter(kind=inputs.choice(kind, "kind", ("webhook", "pull")))
        if (state := query.get("state")) is not None:
            subscriptions = subscriptions.filter(
                state=inputs.choice(state, "state", ("active", "paused", "disabled"))
            )
        if (name := params.text(query, "name")) is not None:
            subscriptions = subscriptions.filter(name=name)
        limit = params.limit(query)
        offset = params.integer(query, "offset", 0)
        page = list(subscriptions.order_by("created_at", "id")[offset : offset + limit])
        progress = selectors.progress(page)
        return Response(
            {
                "subscriptions": [selectors.subscription_as_dict(s, progress[s.id]) for s in page],
                "next_offset": offset + limit if len(page) == limit else None,
            }
        )

    @extend_schema(
        summary="Create a subscription (the webhook secret is returned once)",
        request=dict,
        responses={201: dict, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request):
        params.reject_unknown(request.query_params, [])
        body = inputs.body_object(request.data, CREATE_FIELDS, "a subscription")
        kind = inputs.choice(body.get("kind"), "kind", (Subscription.WEBHOOK, Subscription.PULL))
        retry = inputs.retry_policy(body["retry"]) if "retry" in body else {}
        subscription = services.create_subscription(
            principal=_principal(request),
            name=inputs.text(body.get("name"), "name", maximum=200, required=True),
            kind=kind,
            url=body.get("url"),
            filter=inputs.event_filter(body.get("filter")),
            start=inputs.start(body.get("start")),
            max_attempts=retry.get("max_attempts"),
            backoff=retry.get("backoff"),
            lease_seconds=inputs.lease_seconds(body["lease_seconds"]) if "lease_seconds" in body else None,
            state=inputs.choice(body.get("state", "active"), "state", ("active", "paused")),
        )
        data = selectors.subscription_as_dict(
            subscription, selectors.progress([subscription])[subscription.id]
        )
        if subscription.kind == Subscription.WEBHOOK:
            data["secret"] = subscription.secret
        return Response(data, status=201)


@extend_schema(tags=["subscriptions"])
class SubscriptionDetailView(APIView):
    required_scopes = {"GET": "events:read", "PATCH": "events:write", "DELETE": "events:write"}

    @extend_schema(
        operation_id="subscriptions_retrieve",
        summary="One subscription with its progress",
        responses={200: dict, **ERRORS},
    )
    def get(self, request, subscription_id: str):
        params.reject_unknown(request.query_params, [])
        subscription = services.get_subscription(_principal(request), subscription_id)
        return Response(
            selectors.subscription_as_dict(subscription, selectors.progress([subscription])[subscription.id])
        )

    @extend_schema(
        summary="Change name, url, filter, retry, lease_seconds or state; rewind (admin)",
        description="state: active | paused | disabled. rewind: a position or time; the live "
        "checkpoint moves there and events from it on are enqueued again (admin scope).",
        request=dict,
        responses={200: dict, 409: ErrorSerializer, **ERRORS},
    )
    def patch(self, request, subscription_id: str):
        params.reject_unknown(request.query_params, [])
        subscription = services.get_subscription(_principal(request), subscription_id)
        body = inputs.body_object(request.data, PATCH_FIELDS, "fields to change")
        changes: dict = {}
        if "name" in body:
            changes["name"] = inputs.text(body["name"], "name", maximum=200, required=True)
        if "url" in body:
            changes["url"] = body["url"]
        if "filter" in body:
            changes["filter"] = inputs.event_filter(body["filter"])
        if "retry" in body:
            changes.update(inputs.retry_policy(body["retry"]))
        if "lease_seconds" in body:
            changes["lease_seconds"] = inputs.lease_seconds(body["lease_seconds"])
        if "state" in body:
            changes["state"] = inputs.choice(body["state"], "state", ("active", "paused", "disabled"))
        rewind = None
        if "rewind" in body:
            _require_admin(request)
            rewind = inputs.position_or_time(body["rewind"], "rewind")
        if changes:
            subscription = services.update_subscription(
                subscription, principal=_principal(request), **changes
            )
        if rewind is not None:
            subscription = services.set_checkpoint(subscription, services.resolve_start(rewind))
        return Response(
            selectors.subscription_as_dict(subscription, selectors.progress([subscription])[subscription.id])
        )

    @extend_schema(
        summary="Delete a subscription, its queue, dead letters and replays", responses={204: None, **ERRORS}
    )
    def delete(self, request, subscription_id: str):
        params.reject_unknown(request.query_params, [])
        services.delete_subscription(services.get_subscription(_principal(request), subscription_id))
        return Response(status=204)


# --- pull ------------------------------------------------------------------------------------------


@extend_schema(tags=["consumer groups"])
class FetchView(APIView):
    required_scopes = {"POST": "events:read"}

    @extend_schema(
        summary="Lease events to a consumer of a pull subscription",
        description="Body: consumer (name), max_events (1-1000, default 100), lease_seconds "
        "(default: the subscription's). Events of one stream go to one consumer at a time, in order.",
        request=dict,
        responses={200: dict, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request, subscription_id: str):
        params.reject_unknown(request.query_params, [])
        subscription = services.get_subscription(_principal(request), subscription_id)
        body = inputs.body_object(_body(request), ("consumer", "max_events", "lease_seconds"), "a fetch")
        consumer = pull.check_consumer(body.get("consumer"))
        max_events = inputs.integer(
            body.get("max_events", 100), "max_events", minimum=1, maximum=pull.MAX_FETCH
        )
        lease = (
            inputs.lease_seconds(body["lease_seconds"])
            if "lease_seconds" in body
            else subscription.lease_seconds
        )
        messages = pull.fetch(subscription, consumer=consumer, max_events=max_events, lease_seconds=lease)
        return Response(
            {"messages": [m.as_dict() for m in messages], "state": subscription.state, "lease_seconds": lease}
        )


@extend_schema(tags=["consumer groups"])
class AckView(APIView):
    required_scopes = {"POST": "events:read"}

    @extend_schema(summary="Acknowledge processed messages", request=dict, responses={200: dict, **ERRORS})
    def post(self, request, subscription_id: str):
        params.reject_unknown(request.query_params, [])
        subscription = services.get_subscription(_principal(request), subscription_id)
        body = inputs.body_object(request.data, ("consumer", "ack_ids"), "an ack")
        return Response(
            pull.ack(
                subscription,
                consumer=pull.check_consumer(body.get("consumer")),
                ack_ids=pull.parse_ack_ids(body.get("ack_ids")),
            )
        )


@extend_schema(tags=["consumer groups"])
class NackView(APIView):
    required_scopes = {"POST": "events:read"}

    @extend_schema(
        summary="Give messages back: retry later or park in the dead letter queue",
        request=dict,
        responses={200: dict, **ERRORS},
    )
    def post(self, request, subscription_id: str):
        params.reject_unknown(request.query_params, [])
        subscription = services.get_subscription(_principal(request), subscription_id)
        body = inputs.body_object(
            request.data, ("consumer", "ack_ids", "reason", "action", "delay_seconds"), "a nack"
        )
        delay = body.get("delay_seconds")
        return Response(
            pull.nack(
                subscription,
                consumer=pull.check_consumer(body.get("consumer")),
                ack_ids=pull.parse_ack_ids(body.get("ack_ids")),
                reason=inputs.text(body.get("reason"), "reason", maximum=2000) or "",
                action=inputs.choice(body.get("action", "retry"), "action", ("retry", "park")),
                delay_seconds=None
                if delay is None
                else inputs.number(delay, "delay_seconds", minimum=0, maximum=inputs.MAX_DELAY),
            )
        )


# --- dead letters ----------------------------------------------------------------------------------


def _dead_letter_filters(source, *, allow_subscription: bool) -> dict:
    names = (*DEAD_LETTER_FILTERS, "subscription") if allow_subscription else DEAD_LETTER_FILTERS
    values: dict = {}
    for name in names:
        value = source.get(name)
        if value is None:
            continue
        if name in ("since", "until"):
            values[name] = _moment(value, name)
        elif name == "reason":
            values[name] = inputs.choice(value, "reason", (DeadLetter.MAX_ATTEMPTS, DeadLetter.PARKED))
        elif name == "type":
            values[name] = inputs.text(value, name)
            if not is_type_pattern(values[name]):  # the readers' rule: task.*, not **
                raise InvalidRequest(f"type: a wildcard is allowed only at the end (task.*), got {value[:60]!r}",
                                     field="type")  # fmt: skip
        else:
            values[name] = inputs.text(value, name)
    return values


def _moment(value, name: str):
    try:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be an RFC 3339 time")
        return parse_time(value, name)
    except ValueError as exc:
        raise InvalidRequest(str(exc), field=name) from None


def _dead_letter_page(request, queryset) -> Response:
    query = request.query_params
    limit = params.limit(query)
    after = params.integer(query, "after", 0)
    page = list(queryset.filter(id__gt=after).order_by("id")[:limit])
    return Response(
        {
            "dead_letters": [selectors.dead_letter_as_dict(row) for row in page],
            "next_after": page[-1].id if len(page) == limit else None,
        }
    )


@extend_schema(tags=["dead letters"])
class SubscriptionDeadLettersView(APIView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="subscription_dead_letters_list",
        summary="Dead letters of one subscription",
        parameters=[OpenApiParameter(name, str) for name in (*DEAD_LETTER_FILTERS, "after", "limit")],
        responses={200: dict, **ERRORS},
    )
    def get(self, request, subscription_id: str):
        params.reject_unknown(request.query_params, [*DEAD_LETTER_FILTERS, "after", "limit"])
        subscription = services.get_subscription(_principal(request), subscription_id)
        filters = _dead_letter_filters(request.query_params, allow_subscription=False)
        return _dead_letter_page(request, services.dead_letter_query(subscriptions=[subscription], **filters))


@extend_schema(tags=["dead letters"])
class DeadLettersView(APIView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        summary="Dead letters of every subscription this token sees",
        parameters=[
            OpenApiParameter(n, str) for n in ("subscription", *DEAD_LETTER_FILTERS, "after", "limit")
        ],
        responses={200: dict, **ERRORS},
    )
    def get(self, request):
        params.reject_unknown(request.query_params, ["subscription", *DEAD_LETTER_FILTERS, "after", "limit"])
        filters = _dead_letter_filters(request.query_params, allow_subscription=True)
        subscriptions = services.visible(_principal(request))
        if "subscription" in filters:
            subscriptions = [services.get_subscription(_principal(request), filters.pop("subscription"))]
        return _dead_letter_page(request, services.dead_letter_query(subscriptions=subscriptions, **filters))


@extend_schema(tags=["dead letters"])
class DeadLetterDetailView(APIView):
    required_scopes = {"GET": "events:read", "DELETE": "admin"}

    @extend_schema(
        operation_id="dead_letter_retrieve",
        summary="One dead letter, with its event",
        responses={200: dict, **ERRORS},
    )
    def get(self, request, subscription_id: str, dead_letter_id: str):
        params.reject_unknown(request.query_params, [])
        subscription = services.get_subscription(_principal(request), subscription_id)
        row = services.get_dead_letter(subscription, dead_letter_id)
        from subscriptions.queue import load_events

        data = selectors.dead_letter_as_dict(row)
        data["event"] = load_events([row.position]).get(row.position)
        return Response(data)

    @extend_schema(
        summary="Discard a dead letter (the event stays in the log)", responses={204: None, **ERRORS}
    )
    def delete(self, request, subscription_id: str, dead_letter_id: str):
        params.reject_unknown(request.query_params, [])
        subscription = services.get_subscription(_principal(request), subscription_id)
        row = services.get_dead_letter(subscription, dead_letter_id)
        services.discard(DeadLetter.objects.filter(id=row.id))
        return Response(status=204)


@extend_schema(tags=["dead letters"])
class DeadLetterRedriveView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="dead_letter_redrive",
        summary="Put one dead letter back in the queue",
        request=None,
        responses={200: dict, **ERRORS},
    )
    def post(self, request, subscription_id: str, dead_letter_id: str):
        params.reject_unknown(request.query_params, [])
        subscription = services.get_subscription(_principal(request), subscription_id)
        row = services.get_dead_letter(subscription, dead_letter_id)
        return Response({"redriven": services.redrive(DeadLetter.objects.filter(id=row.id))})


@extend_schema(tags=["dead letters"])
class DeadLettersRedriveView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="dead_letters_redrive",
        summary="Redrive many dead letters, by filter",
        description="Body (all optional): stream, type (exact or prefix*), reason, since, until "
        "(when dead-lettered), ids, limit (default 1000, at most 10000). An empty body redrives up "
        "to limit dead letters of the subscription.",
        request=dict,
        responses={200: dict, **ERRORS},
    )
    def post(self, request, subscription_id: str):
        params.reject_unknown(request.query_params, [])
        subscription = services.get_subscription(_principal(request), subscription_id)
        body = inputs.body_object(
            _body(request), (*DEAD_LETTER_FILTERS, "ids", "limit"), "a dead letter filter"
        )
        filters = _dead_letter_filters(body, allow_subscription=False)
        if "ids" in body:
            ids = body["ids"]
            if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids
            ):
                raise InvalidRequest("ids must be a list of dead letter ids (integers)", field="ids")
            filters["ids"] = ids
        limit = inputs.integer(body.get("limit", 1000), "limit", minimum=1, maximum=10_000)
        queryset = services.dead_letter_query(subscriptions=[subscription], **filters).order_by("id")
        selected = DeadLetter.objects.filter(id__in=list(queryset.values_list("id", flat=True)[:limit]))
        count = services.redrive(selected)
        return Response({"redriven": count, "remaining": queryset.count()})


# --- replay ----------------------------------------------------------------------------------------


@extend_schema(tags=["replay"])
class ReplaysView(APIView):
    required_scopes = {"GET": "events:read", "POST": "admin"}

    @extend_schema(
        operation_id="replays_list",
        summary="Replay jobs of a subscription, newest first",
        parameters=[
            OpenApiParameter("before", int, description="jobs older than this id (next_before)"),
            OpenApiParameter("limit", int),
        ],
        responses={200: dict, **ERRORS},
    )
    def get(self, request, subscription_id: str):
        query = request.query_params
        params.reject_unknown(query, ["before", "limit"])
        limit = params.limit(query)
        before = params.integer(query, "before", None, minimum=1)
        subscription = services.get_subscription(_principal(request), subscription_id)
        jobs = subscription.replays.order_by("-id")  # newest first; ``before`` pages back
        if before is not None:
            jobs = jobs.filter(id__lt=before)
        page = list(jobs[:limit])
        return Response(
            {
                "replays": [selectors.replay_as_dict(job) for job in page],
                "next_before": page[-1].id if len(page) == limit else None,
            }
        )

    @extend_schema(
        operation_id="replay_create",
        summary="Re-deliver a slice of the log to this subscription (a tracked, cancelable job)",
        description="Body: from (position or RFC 3339 time, inclusive), until (optional, exclusive; "
        "default: the horizon now), types (optional list), stream (optional). The slice is also "
        "filtered by the subscription's filter; the live checkpoint is not touched.",
        request=dict,
        responses={202: dict, **ERRORS},
    )
    def post(self, request, subscription_id: str):
        params.reject_unknown(request.query_params, [])
        subscription = services.get_subscription(_principal(request), subscription_id)
        body = inputs.body_object(request.data, ("from", "until", "types", "stream"), "a replay")
        if "from" not in body:
            raise InvalidRequest("from is required: a position or an RFC 3339 time", field="from")
        start = inputs.position_or_time(body["from"], "from")
        until = inputs.position_or_time(body["until"], "until") if body.get("until") is not None else None
        if until is not None and isinstance(until, int) != isinstance(start, int):
            raise InvalidRequest("from and until must both be positions or both be times", field="until")
        job = services.start_replay(
            subscription,
            start=start,
            until=until,
            types=inputs.types_list(body.get("types"), "types"),
            stream=inputs.text(body.get("stream"), "stream"),
            created_by=_principal(request).name,
            request=body,
        )
        return Response(selectors.replay_as_dict(job), status=202)


class ReplayListView(ReplaysView):
    http_method_names = ["get", "head", "options"]


class ReplayCreateView(ReplaysView):
    http_method_names = ["post", "options"]


@extend_schema(tags=["replay"])
class ReplayDetailView(APIView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="replay_retrieve", summary="A replay job's progress", responses={200: dict, **ERRORS}
    )
    def get(self, request, subscription_id: str, job_id: str):
        params.reject_unknown(request.query_params, [])
        subscription = services.get_subscription(_principal(request), subscription_id)
        return Response(selectors.replay_as_dict(services.get_replay(subscription, job_id)))


@extend_schema(tags=["replay"])
class ReplayCancelView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        summary="Cancel a running replay job",
        request=None,
        responses={200: dict, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request, subscription_id: str, job_id: str):
        params.reject_unknown(request.query_params, [])
        subscription = services.get_subscription(_principal(request), subscription_id)
        job = services.cancel_replay(services.get_replay(subscription, job_id))
        return Response(selectors.replay_as_dict(job))
