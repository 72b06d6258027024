"""The admin shows the log read-only and streams with their actions."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import ProgrammingError

from access.models import ApiToken
from events import services
from events.models import Event
from streams.models import Stream
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


@pytest.mark.parametrize(
    "path",
    [
        "/admin/subscriptions/subscription/?types__contains=x",  # PostgreSQL reads no array in "x"
        "/admin/subscriptions/replayjob/?types=x",
        "/admin/access/apitoken/?scopes=x",
        "/admin/subscriptions/subscription/?backoff__in=x",  # not a number, found when compiled
        "/admin/events/event/?data_base64=x",  # text for a bytea column
        "/admin/events/event/?data=x",  # a json column has no =
        "/admin/events/event/?position__range=1",  # a range with one bound
        "/admin/relay/deadletter/?position__range=99999999999999999999",  # ... or with 20
        "/admin/streams/stream/?created_at__range=",
        "/admin/events/event/?recordedtime__year=99999999999999999999",  # the date hierarchy's year
        "/admin/snapshots/snapshot/?created_at__year=-1",
        "/admin/schemas/subject/?id__range=1",
        "/admin/auth/user/?id__range=1",
    ],
)
def test_a_filter_the_database_cannot_read_is_the_admins_error_redirect(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == 302 and response["Location"] == path.split("?")[0] + "?e=1"


def test_a_fault_on_a_changelist_without_filters_stays_a_500(admin_client, monkeypatch):
    def broken(request):
        raise ProgrammingError("column does not exist")

    monkeypatch.setattr(admin.site._registry[Stream], "get_queryset", broken)
    with pytest.raises(ProgrammingError):
        admin_client.get("/admin/streams/stream/")


@pytest.mark.parametrize(
    ("changelist", "action"),
    [
        ("/admin/access/apitoken/", "delete_selected"),
        ("/admin/auth/user/", "delete_selected"),
        ("/admin/relay/checkpoint/", "rewind_action"),
        ("/admin/relay/deadletter/", "delete_selected"),
        ("/admin/schemas/subject/", "soft_delete"),
        ("/admin/snapshots/snapshot/", "delete_selected"),
        ("/admin/subscriptions/subscription/", "pause"),  # a UUID key
        ("/admin/subscriptions/deadletter/", "redrive"),
        ("/admin/subscriptions/replayjob/", "cancel"),
    ],
)
def test_an_action_on_an_id_that_is_not_a_key_is_a_400(admin_client, changelist, action):
    response = admin_client.post(changelist, {"action": action, "_selected_action": ["abc"]})
    assert response.status_code == 400


def test_a_forged_id_among_real_ones_runs_the_action_on_none(admin_client):
    token, _ = ApiToken.issue("kept", ["events:read"])
    response = admin_client.post(
        "/admin/access/apitoken/",
        {"action": "delete_selected", "post": "yes", "_selected_action": [str(token.pk), "abc"]},
    )
    assert response.status_code == 400 and ApiToken.objects.filter(pk=token.pk).exists()
    services.append([new_event()], stream="kept-1")
    response = admin_client.post(
        "/admin/streams/stream/", {"action": "soft_delete", "_selected_action": ["kept-1", "a\x00b"]}
    )
    assert response.status_code == 400 and Stream.objects.get(name="kept-1").deleted_at is None


def test_every_admin_page_of_the_service_refuses_unreadable_input():
    from flunq_events.admin_input import RefuseUnreadableInput

    missing = [type(model_admin).__name__ for model_admin in admin.site._registry.values()
               if not isinstance(model_admin, RefuseUnreadableInput)]  # fmt: skip
    assert missing == []
