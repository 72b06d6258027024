"""Replay: a tracked, cancelable job re-enqueues a slice of the log without moving the live position."""

from __future__ import annotations

import pytest

from events.selectors import get_event
from subscriptions import pull
from subscriptions.delivery import Deliverer
from subscriptions.models import DeadLetter, Delivery, ReplayJob, Subscription
from tests.subscriptions.conftest import append_to, caught_up, run_until

pytestmark = pytest.mark.django_db(transaction=True)


def _time(position: int) -> str:
    from events.selectors import read_all

    caught_up()
    event = read_all(position - 1, 1).events[0]
    return event["recordedtime"].isoformat().replace("+00:00", "Z")


def _pull_subscription(api, name: str) -> str:
    """A pull subscription starting now; its id."""
    response = api.post(
        "/api/v1/subscriptions", {"name": name, "kind": "pull", "start": "now"}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def test_replay_by_time_delivers_exactly_the_slice(api, admin_api):
    positions = [append_to(f"replay-{i % 3}", 1, type_="task.completed")[0] for i in range(10)]
    caught_up()
    sub_id = _pull_subscription(api, "r")
    subscription = Subscription.objects.get(id=sub_id)
    checkpoint = subscription.checkpoint
    assert pull.fetch(subscription, consumer="c", max_events=100, lease_seconds=30) == []

    body = {"from": _time(positions[3]), "until": _time(positions[7])}
    response = admin_api.post(f"/api/v1/subscriptions/{sub_id}/replay", body, format="json")
    assert response.status_code == 202, response.json()
    job = response.json()
    assert job["state"] == "running"

    got = []
    while batch := pull.fetch(subscription, consumer="c", max_events=100, lease_seconds=30):
        got.extend(batch)
        pull.ack(subscription, consumer="c", ack_ids=[pull.parse_ack_ids([m.ack_id])[0] for m in batch])
    assert sorted(m.event["position"] for m in got) == positions[3:7]  # [from, until)
    assert {m.replay_job for m in got} == {job["id"]}
    pull.fetch(subscription, consumer="c", max_events=1, lease_seconds=30)  # lets the job finish
    done = api.get(f"/api/v1/subscriptions/{sub_id}/replays/{job['id']}").json()
    assert (done["state"], done["enqueued"], done["delivered"]) == ("completed", 4, 4)
    subscription.refresh_from_db()
    assert subscription.checkpoint >= checkpoint  # the live position was not rewound


def test_replay_by_position_and_types_to_a_webhook(api, admin_api, allow_local, receiver):
    append_to("mixed-1", 2, type_="workflow.created")
    wanted = append_to("mixed-1", 2, type_="task.completed")
    append_to("mixed-1", 1, type_="task.completed")
    caught_up()
    sub = api.post(
        "/api/v1/subscriptions", {"name": "w", "kind": "webhook", "url": receiver.url}, format="json"
    ).json()
    body = {"from": 1, "until": wanted[-1] + 1, "types": ["task.*"]}
    job = admin_api.post(f"/api/v1/subscriptions/{sub['id']}/replay", body, format="json").json()
    worker = Deliverer(concurrency=2)
    try:
        run_until(worker.step, lambda: ReplayJob.objects.get(id=job["id"]).state == "completed")
    finally:
        worker.close()
    assert [e["position"] for e in receiver.ok_events()] == wanted
    assert receiver.received[0].headers["webhook-id"].endswith(f"-replay{job['id']}")


def test_cancel_a_replay(api, admin_api):
    append_to("cancel-1", 5)
    caught_up()
    sub_id = _pull_subscription(api, "c")
    job = admin_api.post(f"/api/v1/subscriptions/{sub_id}/replay", {"from": 0}, format="json").json()
    subscription = Subscription.objects.get(id=sub_id)
    assert len(pull.fetch(subscription, consumer="c", max_events=2, lease_seconds=30)) == 2
    canceled = admin_api.post(f"/api/v1/subscriptions/{sub_id}/replays/{job['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["state"] == "canceled"
    assert pull.fetch(subscription, consumer="d", max_events=10, lease_seconds=30) == []
    again = admin_api.post(f"/api/v1/subscriptions/{sub_id}/replays/{job['id']}/cancel")
    assert again.status_code == 409
    listed = api.get(f"/api/v1/subscriptions/{sub_id}/replays").json()["replays"]
    assert [j["id"] for j in listed] == [job["id"]]


def test_a_canceled_replay_has_nothing_pending(api, admin_api):
    positions = append_to("cancel-2", 5)
    caught_up()
    sub_id = _pull_subscription(api, "c")
    job = admin_api.post(
        f"/api/v1/subscriptions/{sub_id}/replay", {"from": positions[0]}, format="json"
    ).json()
    subscription = Subscription.objects.get(id=sub_id)
    got = pull.fetch(subscription, consumer="c", max_events=2, lease_seconds=30)
    pull.ack(subscription, consumer="c", ack_ids=pull.parse_ack_ids([got[0].ack_id]))
    canceled = admin_api.post(f"/api/v1/subscriptions/{sub_id}/replays/{job['id']}/cancel").json()
    # Its other four events left the queue: none is pending any more.
    for shown in (canceled, api.get(f"/api/v1/subscriptions/{sub_id}/replays").json()["replays"][0]):
        assert (shown["state"], shown["enqueued"], shown["delivered"], shown["pending"]) == (
            "canceled",
            5,
            1,
            0,
        )


def test_redriving_a_replays_dead_letter_queues_the_replay_again(api, admin_api):
    caught_up()
    sub_id = _pull_subscription(api, "rd")
    position = append_to("redrive-replay", 1)[0]
    caught_up()
    job = admin_api.post(f"/api/v1/subscriptions/{sub_id}/replay", {"from": position}, format="json").json()
    subscription = Subscription.objects.get(id=sub_id)
    live, copy = pull.fetch(subscription, consumer="c", max_events=10, lease_seconds=30)
    assert [(m.event["position"], m.replay_job) for m in (live, copy)] == [
        (position, None),
        (position, job["id"]),
    ]
    pull.nack(
        subscription,
        consumer="c",
        ack_ids=pull.parse_ack_ids([copy.ack_id]),
        reason="poison",
        action="park",
    )
    dead = DeadLetter.objects.get(subscription_id=sub_id)
    assert dead.replay_job_id == job["id"]
    # The live copy is still pending: the redriven one is the replay's again, not a second live one.
    response = admin_api.post(f"/api/v1/subscriptions/{sub_id}/dead-letters/{dead.id}/redrive")
    assert response.json() == {"redriven": 1}
    assert not DeadLetter.objects.filter(id=dead.id).exists()
    assert Delivery.objects.filter(subscription_id=sub_id, replay_job_id=job["id"]).count() == 1
    progress = api.get(f"/api/v1/subscriptions/{sub_id}/replays/{job['id']}").json()
    assert (progress["state"], progress["pending"]) == ("running", 1)

    pull.ack(subscription, consumer="c", ack_ids=pull.parse_ack_ids([live.ack_id]))
    again = pull.fetch(subscription, consumer="c", max_events=10, lease_seconds=30)
    assert [(m.event["position"], m.replay_job) for m in again] == [(position, job["id"])]
    pull.ack(subscription, consumer="c", ack_ids=pull.parse_ack_ids([again[0].ack_id]))
    pull.fetch(subscription, consumer="c", max_events=1, lease_seconds=30)  # lets the job finish
    done = api.get(f"/api/v1/subscriptions/{sub_id}/replays/{job['id']}").json()
    assert (done["state"], done["delivered"], done["dead_lettered"], done["pending"]) == (
        "completed",
        1,
        1,
        0,
    )


def test_a_redriven_replay_dead_letter_keeps_its_webhook_id(api, admin_api, allow_local, receiver):
    positions = append_to("hook-redrive", 1)
    caught_up()
    sub = api.post(
        "/api/v1/subscriptions",
        {"name": "w", "kind": "webhook", "url": receiver.url, "retry": {"max_attempts": 1, "backoff": [0]}},
        format="json",
    ).json()
    receiver.respond = lambda r: (500, {})
    job = admin_api.post(
        f"/api/v1/subscriptions/{sub['id']}/replay", {"from": positions[0]}, format="json"
    ).json()
    worker = Deliverer(concurrency=2)
    try:
        run_until(worker.step, lambda: DeadLetter.objects.filter(replay_job_id=job["id"]).exists())
        receiver.respond = lambda r: (200, {})
        response = admin_api.post(
            f"/api/v1/subscriptions/{sub['id']}/dead-letters/redrive", {}, format="json"
        )
        assert response.json() == {"redriven": 1, "remaining": 0}
        run_until(worker.step, lambda: len(receiver.ok_events()) == 1)
    finally:
        worker.close()
    # The same webhook-id on the failed attempt and on the redriven one: receivers dedupe on it.
    assert [r.headers["webhook-id"] for r in receiver.received] == [
        f"{sub['id']}-{positions[0]}-replay{job['id']}"
    ] * 2


def test_rewind_moves_the_live_checkpoint(api, admin_api):
    positions = append_to("rewind-1", 3)
    caught_up()
    sub_id = _pull_subscription(api, "rw")
    assert (
        api.patch(f"/api/v1/subscriptions/{sub_id}", {"rewind": positions[1]}, format="json").status_code
        == 403
    )
    response = admin_api.patch(f"/api/v1/subscriptions/{sub_id}", {"rewind": positions[1]}, format="json")
    assert response.json()["progress"]["checkpoint"] == positions[0]
    got = pull.fetch(Subscription.objects.get(id=sub_id), consumer="c", max_events=10, lease_seconds=30)
    assert [m.event["position"] for m in got] == positions[1:]
    assert get_event(got[0].event["id"])["position"] == positions[1]


def test_replay_jobs_are_listed_newest_first_in_pages(api, admin_api):
    sub_id = _pull_subscription(api, "pages")
    jobs = [
        admin_api.post(f"/api/v1/subscriptions/{sub_id}/replay", {"from": 0}, format="json").json()["id"]
        for _ in range(5)
    ]
    url = f"/api/v1/subscriptions/{sub_id}/replays"
    first = api.get(url, {"limit": 2}).json()
    assert [j["id"] for j in first["replays"]] == jobs[:-3:-1] and first["next_before"] == jobs[3]
    rest = api.get(url, {"limit": 3, "before": first["next_before"]}).json()
    assert [j["id"] for j in rest["replays"]] == jobs[2::-1] and rest["next_before"] == jobs[0]
    assert api.get(url, {"before": jobs[0]}).json() == {"replays": [], "next_before": None}
    assert api.get(url, {"before": "x"}).status_code == 400


def test_a_dead_letter_of_an_ended_replay_is_redriven_as_its_copy_and_counted_no_more(api, admin_api):
    """Its webhook-id stays (receivers dedupe on it); the ended job's counts stay as they were (a
    completed job showed pending again)."""
    caught_up()
    sub_id = _pull_subscription(api, "ended")
    position = append_to("ended-replay", 1)[0]
    caught_up()
    subscription = Subscription.objects.get(id=sub_id)
    [live] = pull.fetch(subscription, consumer="c", max_events=10, lease_seconds=30)
    pull.ack(subscription, consumer="c", ack_ids=pull.parse_ack_ids([live.ack_id]))
    job = admin_api.post(f"/api/v1/subscriptions/{sub_id}/replay", {"from": position}, format="json").json()
    [copy] = pull.fetch(subscription, consumer="c", max_events=10, lease_seconds=30)
    pull.nack(
        subscription, consumer="c", ack_ids=pull.parse_ack_ids([copy.ack_id]), reason="x", action="park"
    )
    pull.fetch(subscription, consumer="c", max_events=1, lease_seconds=30)  # lets the job finish
    before = api.get(f"/api/v1/subscriptions/{sub_id}/replays/{job['id']}").json()
    assert (before["state"], before["pending"]) == ("completed", 0)
    dead = DeadLetter.objects.get(subscription_id=sub_id)
    response = admin_api.post(f"/api/v1/subscriptions/{sub_id}/dead-letters/{dead.id}/redrive")
    assert response.json() == {"redriven": 1}
    after = api.get(f"/api/v1/subscriptions/{sub_id}/replays/{job['id']}").json()
    assert (after["state"], after["pending"], after["enqueued"]) == ("completed", 0, before["enqueued"])
    [again] = pull.fetch(subscription, consumer="c", max_events=10, lease_seconds=30)
    assert (again.event["position"], again.replay_job) == (position, job["id"])
