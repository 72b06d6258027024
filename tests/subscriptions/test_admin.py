"""The admin lists subscriptions with lag, pauses/resumes them, redrives dead letters, starts replays."""

from __future__ import annotations

import pytest

from subscriptions import pull, services
from subscriptions.models import DeadLetter, ReplayJob, Subscription
from tests.subscriptions.conftest import append_to, caught_up

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/subscriptions/subscription/"


@pytest.fixture
def parked(api):
    """A pull subscription with one parked dead letter."""
    append_to("adm-1", 2)
    caught_up()
    sub = api.post(
        "/api/v1/subscriptions", {"name": "adm", "kind": "pull", "start": "beginning"}, format="json"
    )
    subscription = Subscription.objects.get(id=sub.json()["id"])
    got = pull.fetch(subscription, consumer="c", max_events=1, lease_seconds=30)
    pull.nack(
        subscription, consumer="c", ack_ids=pull.parse_ack_ids([got[0].ack_id]), reason="bad", action="park"
    )
    return subscription


def test_pages_and_state_actions(admin_client, parked):
    page = admin_client.get(CHANGELIST)
    assert page.status_code == 200 and "adm" in page.content.decode()
    assert admin_client.get(f"{CHANGELIST}{parked.id}/change/").status_code == 200
    admin_client.post(CHANGELIST, {"action": "pause", "_selected_action": [str(parked.id)]})
    assert Subscription.objects.get(id=parked.id).state == "paused"
    admin_client.post(CHANGELIST, {"action": "resume", "_selected_action": [str(parked.id)]})
    assert Subscription.objects.get(id=parked.id).state == "active"


def test_dead_letter_actions(admin_client, parked):
    assert admin_client.get("/admin/subscriptions/deadletter/").status_code == 200
    dead = DeadLetter.objects.get()
    admin_client.post(
        "/admin/subscriptions/deadletter/", {"action": "redrive", "_selected_action": [dead.id]}
    )
    assert DeadLetter.objects.count() == 0
    got = pull.fetch(parked, consumer="d", max_events=10, lease_seconds=30)
    assert [m.event["position"] for m in got] == [dead.position, dead.position + 1]  # back first, in order


def test_a_dead_letter_whose_event_is_pending_again_stays_and_is_said_to(admin_client, parked):
    dead = DeadLetter.objects.get()
    services.set_checkpoint(parked, dead.position - 1)  # a rewind: the event is queued again
    assert (
        pull.fetch(parked, consumer="d", max_events=1, lease_seconds=30)[0].event["position"] == dead.position
    )
    page = admin_client.post(
        "/admin/subscriptions/deadletter/", {"action": "redrive", "_selected_action": [dead.id]}, follow=True
    )
    assert "0 dead letter(s) redriven; 1 stay" in page.content.decode()
    assert DeadLetter.objects.filter(id=dead.id).exists()


def test_replay_from_action(admin_client, parked):
    form = admin_client.post(CHANGELIST, {"action": "replay_from", "_selected_action": [str(parked.id)]})
    assert form.status_code == 200 and "Start replay" in form.content.decode()
    admin_client.post(
        CHANGELIST,
        {
            "action": "replay_from",
            "_selected_action": [str(parked.id)],
            "apply": "1",
            "start": "1",
            "until": "",
            "types": "task.*",
            "stream": "",
        },
    )
    job = ReplayJob.objects.get()
    assert (job.subscription_id, job.start_after, job.types) == (parked.id, 0, ["task.*"])
    assert admin_client.get("/admin/subscriptions/replayjob/").status_code == 200
    admin_client.post("/admin/subscriptions/replayjob/", {"action": "cancel", "_selected_action": [job.id]})
    assert ReplayJob.objects.get().state == "canceled"
    # A job is a record; deleting it would leave the streams' pending counts behind its deliveries.
    assert admin_client.get(f"/admin/subscriptions/replayjob/{job.id}/delete/").status_code == 403
    admin_client.post("/admin/subscriptions/replayjob/", {"action": "delete_selected", "_selected_action": [job.id],
                                                           "post": "yes"})  # fmt: skip
    assert ReplayJob.objects.filter(id=job.id).exists()
    # ... while deleting the subscription removes its jobs with it.
    response = admin_client.post(f"/admin/subscriptions/subscription/{parked.id}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not ReplayJob.objects.filter(id=job.id).exists()


def test_the_change_page_shows_and_changes_nothing(admin_client, parked):
    """Saving it once wrote '' for every empty filter field: a filter matching nothing."""
    before = Subscription.objects.filter(id=parked.id).values().get()
    page = admin_client.get(f"{CHANGELIST}{parked.id}/change/")
    assert page.status_code == 200 and 'name="url"' not in page.content.decode()
    response = admin_client.post(
        f"{CHANGELIST}{parked.id}/change/",
        {"name": "renamed", "url": "ftp://x", "source": "", "stream": "", "max_attempts": "0", "_save": "1"},
    )
    assert response.status_code == 302
    assert Subscription.objects.filter(id=parked.id).values().get() == before
