"""Tenant isolation: a second tenant's token sees nothing of the first, on every read path.

``READ_PATHS`` is a table: one row per way of reading. A row gets a caller (a token and a client)
and the world tenant ``acme`` wrote, and returns what the caller got back. The test runs every row
twice: as ``acme`` it must see acme's data (so the row reads something), as ``globex`` it must see
none of it — no acme event, no acme stream name, id or secret that globex did not itself send.
Other paths (websockets, SSE, gRPC, subscriptions, snapshots, DLQ) join by adding rows.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.events.helpers import cloudevent

pytestmark = pytest.mark.django_db(transaction=True)
ACME, GLOBEX = "acme", "globex"
SECRET = "ACME-SECRET-DATA"


@dataclass
class Caller:
    token: str
    tenant: str | None
    api: APIClient


@dataclass
class World:
    """What acme wrote: its markers must never reach globex."""

    streams: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    source: str = "/acme/billing"
    # Global reads wait for the horizon to pass every write (another transaction anywhere in the
    # cluster may hold it back for a moment).
    last_position: int = 0

    @property
    def wait(self) -> str:
        return f"min_position={self.last_position}"

    def markers(self) -> list[str]:
        return [SECRET, self.source, *self.streams, *self.ids]


@dataclass
class Read:
    request: str  # what the caller sent (its own words may come back in an error message)
    status: int
    body: str


@dataclass
class ReadPath:
    name: str
    read: Callable[[Caller, World], Read]
    # Status codes allowed for the second tenant, e.g. 200 (filtered) or 404 (hidden).
    other_status: tuple[int, ...] = (200,)


def rest(path: Callable[[World], str]) -> Callable[[Caller, World], Read]:
    def read(caller: Caller, world: World) -> Read:
        url = path(world)
        response = caller.api.get(url)
        return Read(url, response.status_code, response.content.decode())

    return read


READ_PATHS = [
    ReadPath("global log", rest(lambda w: f"/api/v1/events?limit=1000&{w.wait}")),
    ReadPath("global log by stream", rest(lambda w: f"/api/v1/events?stream={w.streams[0]}&{w.wait}")),
    ReadPath("global log by category", rest(lambda w: f"/api/v1/events?category=orders&{w.wait}")),
    ReadPath("global log by type", rest(lambda w: f"/api/v1/events?type=invoice.*&{w.wait}")),
    ReadPath("global log by source", rest(lambda w: f"/api/v1/events?source={w.source}&{w.wait}")),
    ReadPath("global log from a position", rest(lambda w: f"/api/v1/events?after=1&{w.wait}")),
    ReadPath("global log asking for acme", rest(lambda w: f"/api/v1/events?tenantid=acme&{w.wait}"), (403,)),
    ReadPath("event by id", rest(lambda w: f"/api/v1/events/{w.ids[0]}"), (404,)),
    ReadPath(
        "event by id and source", rest(lambda w: f"/api/v1/events/{w.ids[1]}?source={w.source}"), (404,)
    ),
    ReadPath("stream events", rest(lambda w: f"/api/v1/streams/{w.streams[0]}/events"), (404,)),
    ReadPath(
        "stream events backward",
        rest(lambda w: f"/api/v1/streams/{w.streams[1]}/events?direction=backward"),
        (404,),
    ),
    ReadPath("stream detail", rest(lambda w: f"/api/v1/streams/{w.streams[0]}"), (404,)),
    ReadPath("stream list", rest(lambda w: "/api/v1/streams?limit=1000")),
    ReadPath("stream list by category", rest(lambda w: "/api/v1/streams?category=orders")),
    ReadPath("stream list by prefix", rest(lambda w: "/api/v1/streams?prefix=orders-")),
    ReadPath("stream list with deleted", rest(lambda w: "/api/v1/streams?include_deleted=true")),
]


def caller(make_token, tenant: str | None, scopes=("events:read", "events:write")) -> Caller:
    token = make_token(list(scopes), tenant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return Caller(token, tenant, client)


def post(api: APIClient, body: Any, path: str = "/api/v1/events"):
    return api.post(path, json.dumps(body), content_type="application/json")


@pytest.fixture
def world(make_token) -> World:
    """acme writes to derived and explicit streams, in batches; globex writes alike."""
    acme = caller(make_token, ACME)
    world = World()
    events = [
        cloudevent("invoice.created", source=world.source, executionid="acme-x1", data={"s": SECRET}),
        cloudevent("invoice.paid", source=world.source, workflowid="acme-w1", data={"s": SECRET}),
    ]
    for event in events:
        event["id"] = f"acme-{event['id']}"
    for event in events:
        response = post(acme.api, event)
        assert response.status_code == 201, response.content
        assert response.json()["tenantid"] == ACME  # stamped from the token
        world.ids.append(event["id"])
        world.streams.append(response.json()["stream"])
        world.last_position = response.json()["position"]
    batch = [cloudevent("invoice.sent", source=world.source, data={"s": SECRET}) for _ in range(2)]
    for event in batch:
        event["id"] = f"acme-{event['id']}"
    response = post(acme.api, batch, "/api/v1/streams/orders-acme1/events")
    assert response.status_code == 201, response.content
    world.streams.insert(0, "orders-acme1")
    world.ids += [event["id"] for event in batch]
    globex = caller(make_token, GLOBEX)
    for event in (cloudevent("invoice.created", source="/globex"), cloudevent("invoice.sent")):
        response = post(globex.api, event, "/api/v1/streams/orders-globex1/events")
        assert response.status_code == 201
        world.last_position = response.json()["position"]
    return world


def tenant_events(body: Any, tenant: str) -> list[dict]:
    """Every JSON object in ``body`` that is an event of ``tenant``."""
    found: list[dict] = []
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("tenantid") == tenant:
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def leaks(read: Read, world: World) -> list[str]:
    """acme's markers in a response to globex that globex did not send itself."""
    found = [marker for marker in world.markers() if marker in read.body and marker not in read.request]
    with contextlib.suppress(json.JSONDecodeError):
        found += [f"event {event.get('id')}" for event in tenant_events(json.loads(read.body), ACME)]
    return found


def check_row(make_token, world: World, path: ReadPath) -> list[str]:
    """What is wrong with one read path (empty when the row holds)."""
    problems = []
    own = path.read(caller(make_token, ACME), world)
    if own.status != 200 or not any(marker in own.body for marker in world.markers()):
        problems.append(f"as acme: {own.status}, nothing of acme read: {own.body[:300]}")
    other = path.read(caller(make_token, GLOBEX), world)
    if other.status not in path.other_status:
        problems.append(f"as globex: status {other.status}, expected {path.other_status}: {other.body[:300]}")
    if found := leaks(other, world):
        problems.append(f"as globex: leaked {found}")
    if other.status >= 400 and "error" not in json.loads(other.body):
        problems.append(f"as globex: error without a JSON error body: {other.body[:300]}")
    if 200 in path.other_status:
        everyone = path.read(caller(make_token, None), world)
        if everyone.status != 200 or not any(marker in everyone.body for marker in world.markers()):
            problems.append(f"without tenant: {everyone.status}, acme's data not read: {everyone.body[:300]}")
    return problems


def test_second_tenant_sees_nothing_of_the_first(make_token, world):
    # One test over the whole table: each transactional test pays a database flush, and the table
    # grows with every path that reads events. The message names every failing row.
    problems = {path.name: check_row(make_token, world, path) for path in READ_PATHS}
    assert {name: found for name, found in problems.items() if found} == {}


def test_global_log_of_a_tenant_holds_exactly_its_events(make_token, world):
    globex = caller(make_token, GLOBEX)
    events = globex.api.get(f"/api/v1/events?limit=1000&{world.wait}").json()["events"]
    assert len(events) == 2 and {event["tenantid"] for event in events} == {GLOBEX}
    acme = caller(make_token, ACME)
    events = acme.api.get(f"/api/v1/events?limit=1000&{world.wait}").json()["events"]
    assert sorted(event["id"] for event in events) == sorted(world.ids)
    # an admin token bound to a tenant is bound all the same
    read = rest(lambda w: f"/api/v1/events?limit=1000&{w.wait}")(caller(make_token, GLOBEX, ["admin"]), world)
    assert read.status == 200 and leaks(read, world) == []
    # the same id under another source (last: the id is then globex's too): each tenant gets its
    # own event, not a 409 listing the sources
    shared = world.ids[2]
    assert post(globex.api, cloudevent(id=shared, source="/globex")).status_code == 201
    mine = globex.api.get(f"/api/v1/events/{shared}")
    assert mine.status_code == 200 and mine.json()["tenantid"] == GLOBEX
    assert leaks(Read(f"/api/v1/events/{shared}", 200, mine.content.decode()), world) == []
    assert acme.api.get(f"/api/v1/events/{shared}").json()["source"] == world.source


# --- writes ----------------------------------------------------------------------------------


def test_appends_of_a_second_tenant(make_token, world):
    globex = caller(make_token, GLOBEX)
    # the tenant is stamped when absent, accepted when it is the token's own
    assert post(globex.api, cloudevent()).json()["tenantid"] == GLOBEX
    assert post(globex.api, cloudevent(tenantid=GLOBEX)).status_code == 201

    response = post(globex.api, cloudevent(tenantid=ACME))
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "forbidden_tenant" and body["attribute"] == "/tenantid"
    assert body["expected"] == GLOBEX and body["actual"] == ACME
    response = post(globex.api, [cloudevent(), cloudevent(tenantid=ACME)])
    assert response.status_code == 403 and response.json()["attribute"] == "/1/tenantid"

    # into acme's streams: explicit, by parameter, derived from the event
    for path, event in [
        (f"/api/v1/streams/{world.streams[0]}/events", cloudevent()),
        (f"/api/v1/events?stream={world.streams[1]}", cloudevent()),
        ("/api/v1/events", cloudevent(executionid="acme-x1")),
    ]:
        response = post(globex.api, event, path)
        assert response.status_code == 403, (path, response.content)
        assert response.json()["error"] == "forbidden_tenant"
        sent = f"{path} {event} execution-{event.get('executionid')}"  # the derived stream is its own
        assert leaks(Read(sent, 403, response.content.decode()), world) == []

    # acme's (source, id): a conflict that names nothing of acme's event
    response = post(globex.api, cloudevent(source=world.source, id=world.ids[0]))
    assert response.status_code == 409
    assert leaks(Read(f"{world.source} {world.ids[0]}", 409, response.content.decode()), world) == []

    # nothing refused was written: globex holds its 2 events and the 2 accepted above
    events = globex.api.get("/api/v1/events?limit=1000&min_position=1").json()["events"]
    assert len(events) == 4 and {event["tenantid"] for event in events} == {GLOBEX}
    acme_events = caller(make_token, ACME).api.get(f"/api/v1/events?{world.wait}").json()["events"]
    assert sorted(event["id"] for event in acme_events) == sorted(world.ids)


def test_stream_admin_of_another_tenant(make_token, world):
    globex_admin = caller(make_token, GLOBEX, ["admin"])
    assert globex_admin.api.delete(f"/api/v1/streams/{world.streams[0]}").status_code == 404
    acme_admin = caller(make_token, ACME, ["admin"])
    assert acme_admin.api.delete(f"/api/v1/streams/{world.streams[0]}").status_code == 204
    # a deleted stream cannot be taken over by recreating it
    response = post(globex_admin.api, {"name": world.streams[0]}, "/api/v1/streams")
    assert response.status_code == 403
    assert post(acme_admin.api, {"name": world.streams[0]}, "/api/v1/streams").status_code == 201


@pytest.mark.parametrize(
    "path",
    ["/api/v1/streams/a%00b", "/api/v1/streams/a%00b/events", "/api/v1/streams/a%00b/snapshots",
     "/api/v1/streams/a%00b/snapshots/latest", "/api/v1/streams/a%00b/state"],
)  # fmt: skip
def test_a_stream_name_no_stream_can_have_is_not_found_for_a_tenant(make_token, path):
    """The tenant's check looked the name up first: PostgreSQL refuses a NUL (a 500)."""
    acme = caller(make_token, ACME)
    response = acme.api.get(path)
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    response = post(acme.api, {"version": 0, "state": 1}, "/api/v1/streams/a%00b/snapshots")
    assert response.status_code == 404
