"""The admin shows the log read-only and streams with their actions."""

from __future__ import annotations

import pytest

from events import services
from events.models import Event
from tests.events.helpers import new_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_event_and_stream_pages(admin_client):
    stored = services.append_one(new_event(executionid="adm", data={"hello": "wörld"}))
    assert admin_client.get("/admin/events/event/").status_code == 200
    assert admin_client.get("/admin/events/event/?q=adm").status_code == 200
    detail = admin_client.get(f"/admin/events/event/{stored.position}/change/")
    assert detail.status_code == 200 and "wörld" in detail.content.decode()
    assert admin_client.get("/admin/events/event/add/").status_code == 403
    streams = admin_client.get("/admin/streams/stream/")
    assert streams.status_code == 200 and "execution-adm" in streams.content.decode()
    linked = admin_client.get("/admin/events/event/?stream=execution-adm")
    assert linked.status_code == 200 and str(stored.position) in linked.content.decode()


def test_stream_actions_soft_delete_then_purge(admin_client):
    services.append([new_event(), new_event()], stream="junk-1")
    admin_client.post("/admin/streams/stream/", {"action": "purge", "_selected_action": ["junk-1"]})
    assert Event.objects.filter(stream="junk-1").count() == 2  # not deleted yet: refused
    admin_client.post("/admin/streams/stream/", {"action": "soft_delete", "_selected_action": ["junk-1"]})
    admin_client.post("/admin/streams/stream/", {"action": "purge", "_selected_action": ["junk-1"]})
    assert Event.objects.filter(stream="junk-1").count() == 0


@pytest.mark.parametrize(
    "path",
    [
        "/admin/events/event/?stream=%00",
        "/admin/subscriptions/subscription/?state=%00",
        "/admin/streams/stream/%00/change/",
    ],
)
def test_a_nul_in_an_admin_address_is_a_400(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == 400 and b"NUL" in response.content
