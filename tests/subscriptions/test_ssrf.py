"""Webhook URLs that point inside the network are refused before any connection is made."""

from __future__ import annotations

import pytest

from subscriptions import ssrf

REFUSED = [
    "http://127.0.0.1/hook",
    "http://[::1]/hook",
    "http://0x7f000001/hook",
    "http://2130706433/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fd00:ec2::254]/hook",
    "http://224.0.0.1/hook",
    "http://localhost/hook",
]
MALFORMED = [
    "ftp://example.com/x",
    "file:///etc/passwd",
    "gopher://example.com/",
    "http:///nohost",
    "http://user:secret@example.com/",
    "http://example.com:99999/",
    "not a url",
    "",
    "http://exa mple.com/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_internal_addresses_are_refused(url, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(ssrf.UnsafeURL) as info:
        ssrf.check_url(url)
    assert "not a public address" in info.value.message


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_are_refused(url):
    with pytest.raises(ssrf.UnsafeURL):
        ssrf.check_url(url)


def test_the_allow_list_names_hosts_or_networks(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.0/8"]
    assert ssrf.check_url("http://127.0.0.1:8080/x").address == "127.0.0.1"
    assert ssrf.check_url("http://localhost:8080/x").address == "127.0.0.1"
    with pytest.raises(ssrf.UnsafeURL):
        ssrf.check_url("http://[::1]:8080/x")
    settings.WEBHOOK_ALLOWED_HOSTS = ["localhost"]
    target = ssrf.check_url("http://LOCALHOST:8080/x?y=1")
    assert (target.host_header, target.path) == ("localhost:8080", "/x?y=1")
    assert "127.0.0.1" in target.addresses
    assert target.connect_url("127.0.0.1") == "http://127.0.0.1:8080/x?y=1"
    with pytest.raises(ssrf.UnsafeURL):
        ssrf.check_url("http://127.0.0.1:8080/x")


def test_public_addresses_pass_the_check_without_connecting():
    # Literal addresses resolve locally; nothing is sent anywhere.
    assert ssrf.check_url("https://93.184.216.34/x").address == "93.184.216.34"
    assert ssrf.is_public(ssrf.ipaddress.ip_address("2606:4700::1111"))


@pytest.mark.django_db
@pytest.mark.parametrize("url", [*REFUSED, "http://[::1]:1/redirect-target"])
def test_the_api_refuses_internal_urls_without_the_allow_list(api, settings, url):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    response = api.post("/api/v1/subscriptions", {"name": "x", "kind": "webhook", "url": url}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "unsafe_url" and response.json()["field"] == "url"
