"""POST /api/v1/ws-tickets: short-lived, single-use, carrying the caller's scopes and tenant."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from live import tickets

pytestmark = pytest.mark.django_db


def test_a_ticket_is_issued_to_a_reader_and_redeemed_once(make_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(['events:read'], tenant='acme')}")
    response = client.post("/api/v1/ws-tickets")
    assert response.status_code == 201
    body = response.json()
    assert body["ticket"].startswith("flqt_") and body["expires_in"] == 30 and body["expires_at"]
    principal = tickets.redeem(body["ticket"])
    assert principal.tenant == "acme" and principal.has_scope("events:read")
    assert tickets.redeem(body["ticket"]) is None


def test_tickets_need_a_token_with_the_read_scope(make_token):
    assert APIClient().post("/api/v1/ws-tickets").status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(['events:write'])}")
    response = client.post("/api/v1/ws-tickets")
    assert response.status_code == 403 and "events:read" in response.json()["message"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(['events:read'])}")
    assert client.post("/api/v1/ws-tickets?x=1").status_code == 400
