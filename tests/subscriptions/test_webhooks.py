"""Webhook delivery against real HTTP receivers on 127.0.0.1: retries, order, DLQ, 410, signatures."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from subscriptions import webhooks
from subscriptions.delivery import Deliverer
from subscriptions.models import DeadLetter, Subscription, SubscriptionStream
from tests.subscriptions.conftest import append_to, caught_up, run_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deliverer():
    worker = Deliverer(concurrency=4)
    yield worker
    worker.close()


def create(api, receiver, **extra) -> dict:
    body = {
        "name": "hook",
        "kind": "webhook",
        "url": receiver.url,
        "start": "beginning",
        "retry": {"max_attempts": 5, "backoff": [0]},
        **extra,
    }
    response = api.post("/api/v1/subscriptions", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_fails_n_times_then_delivered_once_in_order(api, allow_local, receiver, deliverer):
    failures = {"left": 3}

    def respond(received):
        if failures["left"]:
            failures["left"] -= 1
            return 500, {}
        return 200, {}

    receiver.respond = respond
    positions = append_to("order-1", 5)
    create(api, receiver)
    run_until(deliverer.step, lambda: len(receiver.ok_events()) == 5)
    delivered = [e["position"] for e in receiver.ok_events()]
    assert delivered == positions  # once each, in order
    assert len(receiver.received) == 8  # 3 failed attempts at the first event, then 5 successes
    assert {r.event["position"] for r in receiver.received[:4]} == {positions[0]}
    deliverer.step()
    assert len(receiver.received) == 8  # nothing sent twice


def test_always_failing_goes_to_dlq_then_redrive_delivers(api, admin_api, allow_local, receiver, deliverer):
    receiver.respond = lambda r: (500, {})
    positions = append_to("dlq-1", 2)
    sub = create(api, receiver, retry={"max_attempts": 3, "backoff": [0]})
    run_until(deliverer.step, lambda: DeadLetter.objects.count() == 2)
    assert len(receiver.received) == 6
    listed = api.get(f"/api/v1/subscriptions/{sub['id']}/dead-letters").json()["dead_letters"]
    assert [d["position"] for d in listed] == positions
    assert all(
        d["attempts"] == 3 and d["last_status"] == 500 and d["reason"] == "max_attempts" for d in listed
    )
    assert api.get(f"/api/v1/subscriptions/{sub['id']}").json()["progress"]["dead_letters"] == 2

    receiver.respond = lambda r: (204, {})  # the receiver recovers
    response = admin_api.post(f"/api/v1/subscriptions/{sub['id']}/dead-letters/redrive", {}, format="json")
    assert response.json() == {"redriven": 2, "remaining": 0}
    run_until(deliverer.step, lambda: len(receiver.ok_events()) == 2)
    assert [e["position"] for e in receiver.ok_events()] == positions
    assert DeadLetter.objects.count() == 0


def test_single_redrive_and_discard(api, admin_api, allow_local, receiver, deliverer):
    receiver.respond = lambda r: (500, {})
    positions = append_to("dlq-2", 2)
    sub = create(api, receiver, retry={"max_attempts": 1, "backoff": [0]})
    run_until(deliverer.step, lambda: DeadLetter.objects.count() == 2)
    first, second = api.get(f"/api/v1/subscriptions/{sub['id']}/dead-letters").json()["dead_letters"]
    detail = api.get(f"/api/v1/subscriptions/{sub['id']}/dead-letters/{first['id']}").json()
    assert detail["event"]["position"] == positions[0]
    assert (
        admin_api.delete(f"/api/v1/subscriptions/{sub['id']}/dead-letters/{second['id']}").status_code == 204
    )
    receiver.respond = lambda r: (200, {})
    assert admin_api.post(f"/api/v1/subscriptions/{sub['id']}/dead-letters/{first['id']}/redrive").json() == {
        "redriven": 1
    }
    run_until(deliverer.step, lambda: len(receiver.ok_events()) == 1)
    assert receiver.ok_events()[0]["position"] == positions[0]
    assert DeadLetter.objects.count() == 0


def test_410_disables_the_subscription(api, allow_local, receiver, deliverer):
    receiver.respond = lambda r: (410, {})
    append_to("gone-1", 2)
    sub = create(api, receiver)
    run_until(deliverer.step, lambda: Subscription.objects.get(id=sub["id"]).state == "disabled")
    body = api.get(f"/api/v1/subscriptions/{sub['id']}").json()
    assert "410" in body["disabled_reason"]
    assert body["progress"]["pending"] == 2 and DeadLetter.objects.count() == 0
    assert len(receiver.received) == 1
    # Re-enabled, it carries on where it stopped.
    receiver.respond = lambda r: (200, {})
    assert (
        api.patch(f"/api/v1/subscriptions/{sub['id']}", {"state": "active"}, format="json").status_code == 200
    )
    run_until(deliverer.step, lambda: len(receiver.ok_events()) == 2)


def test_failing_for_longer_than_the_failure_period_disables(api, allow_local, receiver, deliverer, settings):
    settings.WEBHOOK_DISABLE_AFTER_SECONDS = 60
    receiver.respond = lambda r: (500, {})
    append_to("slow-1", 1)
    sub = create(api, receiver, retry={"max_attempts": 100, "backoff": [0]})
    run_until(deliverer.step, lambda: Subscription.objects.get(id=sub["id"]).failing_since is not None)
    # The streak began long ago (set directly rather than waiting out the period).
    Subscription.objects.filter(id=sub["id"]).update(failing_since=timezone.now() - timedelta(seconds=61))
    run_until(deliverer.step, lambda: Subscription.objects.get(id=sub["id"]).state == "disabled")
    assert "no successful delivery" in Subscription.objects.get(id=sub["id"]).disabled_reason


def test_retry_after_is_honoured(api, allow_local, receiver, deliverer):
    receiver.respond = lambda r: (429, {"Retry-After": "3600"})
    append_to("busy-1", 1)
    create(api, receiver)
    run_until(deliverer.step, lambda: len(receiver.received) == 1)
    deliverer.drain()
    stream = SubscriptionStream.objects.get(stream="busy-1")
    assert stream.next_attempt_at > timezone.now() + timedelta(seconds=3000)
    deliverer.step()
    assert len(receiver.received) == 1


def test_signature_verifies_with_standardwebhooks(api, allow_local, receiver, deliverer):
    append_to("signed-1", 1, data={"n": 1})
    sub = create(api, receiver)
    assert sub["secret"].startswith("whsec_")
    assert "secret" not in api.get(f"/api/v1/subscriptions/{sub['id']}").json()
    run_until(deliverer.step, lambda: len(receiver.received) == 1)
    received = receiver.received[0]
    payload = Webhook(sub["secret"]).verify(received.body, received.headers)
    assert payload["data"] == {"n": 1} and payload["stream"] == "signed-1"
    assert received.headers["content-type"] == "application/cloudevents+json"
    assert received.headers["webhook-signature"].startswith("v1,")
    assert received.headers["webhook-id"] == f"{sub['id']}-{payload['position']}"
    with pytest.raises(WebhookVerificationError):
        Webhook(sub["secret"]).verify(received.body[:-1] + b" }", received.headers)


def test_a_failing_stream_does_not_hold_back_others(api, allow_local, receiver, deliverer):
    receiver.respond = lambda r: (500, {}) if r.event["stream"] == "blocked-a" else (200, {})
    append_to("blocked-a", 3)
    others = append_to("free-b", 5)
    create(api, receiver, retry={"max_attempts": 1000, "backoff": [0]})
    run_until(deliverer.step, lambda: len(receiver.ok_events()) == 5)
    assert [e["position"] for e in receiver.ok_events()] == others
    sent_a = {r.event["position"] for r in receiver.received if r.event["stream"] == "blocked-a"}
    assert len(sent_a) == 1  # only the head of the failing stream was tried


def test_redirects_are_not_followed(api, allow_local, receiver_factory, deliverer):
    target = receiver_factory()
    redirecting = receiver_factory()
    redirecting.respond = lambda r: (302, {"Location": target.url.replace("127.0.0.1", "localhost")})
    append_to("redirect-1", 1)
    create(api, redirecting, retry={"max_attempts": 2, "backoff": [0]})
    run_until(deliverer.step, lambda: DeadLetter.objects.count() == 1)
    assert "redirect" in DeadLetter.objects.get().last_error
    assert target.received == []


def test_an_address_refused_at_delivery_time_is_never_contacted(
    api, allow_local, receiver, deliverer, settings
):
    append_to("ssrf-late", 1)
    create(api, receiver, retry={"max_attempts": 1, "backoff": [0]})
    settings.WEBHOOK_ALLOWED_HOSTS = []  # allowed when created, not any more
    run_until(deliverer.step, lambda: DeadLetter.objects.count() == 1)
    assert "refused before connecting" in DeadLetter.objects.get().last_error
    assert receiver.received == []


def test_filter_and_start_now(api, allow_local, receiver, deliverer):
    append_to("before-1", 2)
    caught_up()
    create(api, receiver, start="now", filter={"types": ["workflow.*"]})
    append_to("after-1", 1, type_="task.completed")
    wanted = append_to("after-1", 1, type_="workflow.created")
    run_until(deliverer.step, lambda: len(receiver.ok_events()) == 1)
    deliverer.step()
    assert [e["position"] for e in receiver.ok_events()] == wanted


def test_idle_stream_rows_are_compacted_into_totals(api, allow_local, receiver, deliverer):
    from subscriptions import queue

    append_to("compact-1", 2)
    append_to("compact-2", 1)
    sub = create(api, receiver)
    run_until(deliverer.step, lambda: len(receiver.ok_events()) == 3)
    deliverer.drain()  # the last outcomes may still be on their way into the database
    assert SubscriptionStream.objects.count() == 2
    assert queue.compact(idle_seconds=0) == 2
    assert SubscriptionStream.objects.count() == 0
    progress = api.get(f"/api/v1/subscriptions/{sub['id']}").json()["progress"]
    assert (progress["delivered"], progress["pending"], progress["lag"]) == (3, 0, 0)
    more = append_to("compact-1", 1)
    run_until(deliverer.step, lambda: len(receiver.ok_events()) == 4)
    deliverer.drain()
    assert receiver.ok_events()[-1]["position"] == more[0]
    assert api.get(f"/api/v1/subscriptions/{sub['id']}").json()["progress"]["delivered"] == 4


def test_a_host_name_is_sent_as_host_while_connecting_to_the_checked_address(
    api, receiver, deliverer, settings
):
    if {info[4][0] for info in socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)} != {"127.0.0.1"}:
        pytest.skip("localhost does not resolve to 127.0.0.1 only here")
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1/32"]
    port = receiver.url.split(":")[2].split("/")[0]
    append_to("named-1", 1)
    create(api, receiver, url=f"http://localhost:{port}/hook")
    run_until(deliverer.step, lambda: len(receiver.ok_events()) == 1)
    assert receiver.received[0].headers["host"] == f"localhost:{port}"


def test_a_retry_after_date_past_any_calendar_is_ignored():
    assert webhooks.parse_retry_after("Mon, 01 Jan 99999999999999999999 00:00:00 GMT") is None
    assert webhooks.parse_retry_after("\u00b2") is None
    assert webhooks.parse_retry_after("9" * 40) == webhooks.MAX_RETRY_AFTER


def _send(receiver) -> tuple[webhooks.Outcome, float]:
    started = time.monotonic()
    with webhooks.new_client() as client:
        outcome = webhooks.send(client, receiver.url, webhooks.new_secret(), "msg_1", b'{"id": "1"}')
    return outcome, time.monotonic() - started


def test_a_body_that_trickles_holds_the_sender_no_longer_than_the_timeout(allow_local, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    receiver.body_pause = 0.2
    for status in (200, 500):
        receiver.respond = lambda r, status=status: (status, {}, (b"x" for _ in range(100)))  # 20 s
        outcome, took = _send(receiver)
        assert outcome.kind == ("ok" if status == 200 else "retry") and took < 5, (status, took)


def _trickling_server(head: bytes, pause: float) -> tuple[str, threading.Thread]:
    """A server that reads one request and answers ``head`` a byte at a time."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener, listener.accept()[0] as conn:
            conn.settimeout(10)
            received = b""
            while b'{"id": "1"}' not in received:
                received += conn.recv(65536)
            with contextlib.suppress(OSError):  # the client hangs up
                for byte in head:
                    conn.sendall(bytes([byte]))
                    time.sleep(pause)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/hook", thread


def test_headers_that_trickle_hold_the_sender_no_longer_than_the_timeout(allow_local, settings):
    """httpx's timeouts are per read: a byte just within each one could hold an attempt for hours."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    url, server = _trickling_server(b"HTTP/1.1 200 OK\r\nx-slow: " + b"a" * 200 + b"\r\n\r\n", 0.05)  # 10 s
    started = time.monotonic()
    with webhooks.new_client() as client:
        outcome = webhooks.send(client, url, webhooks.new_secret(), "msg_1", b'{"id": "1"}')
    took = time.monotonic() - started
    assert outcome.kind == "retry" and outcome.error == "timeout after 1s: ReadTimeout" and took < 3, took
    server.join(15)


def test_of_a_large_or_unreadable_error_body_only_a_printable_head_is_kept(allow_local, receiver):
    receiver.respond = lambda r: (500, {}, b"bad\x00nul \xff\xfe" + b"y" * 5_000_000)
    outcome, _ = _send(receiver)
    assert outcome.kind == "retry" and "\x00" not in outcome.error and len(outcome.error) < 300
    assert outcome.error.startswith("HTTP 500 bad\ufffdnul \ufffd\ufffd")
    receiver.respond = lambda r: (200, {}, b"z" * 5_000_000)
    assert _send(receiver)[0].kind == "ok"


def test_a_receiver_answering_nul_fails_its_own_attempt_only(api, allow_local, receiver_factory, deliverer):
    """The error is stored with the attempt; a NUL in it would fail the whole step's transaction."""
    nul, fine = receiver_factory(), receiver_factory()
    nul.respond = lambda r: (500, {}, b"bad\x00nul")
    append_to("nul-1", 1)
    append_to("fine-1", 1)
    create(api, nul, name="nul", filter={"stream": "nul-1"}, retry={"max_attempts": 1, "backoff": [0]})
    create(api, fine, name="fine", filter={"stream": "fine-1"})
    run_until(deliverer.step, lambda: len(fine.ok_events()) == 1 and DeadLetter.objects.count() == 1)
    assert "\x00" not in DeadLetter.objects.get().last_error


def test_answers_are_asked_for_uncompressed(allow_local, receiver):
    """The error kept is the body's first bytes: a gzipped error page would be noise."""
    _send(receiver)
    assert receiver.received[0].headers["accept-encoding"] == "identity"
