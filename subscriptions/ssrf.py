"""Webhook URLs that cannot be turned against the service's own network (SSRF).

Rules, checked when a subscription is created or changed and again before every connection:

- only ``http`` and ``https``, with a host, without user info;
- the host is resolved and *every* address must be public (``ipaddress.is_global``, not multicast,
  not an IPv4 address hidden in an IPv6 one that is not public), so loopback, private, shared,
  link-local (which includes the cloud metadata address 169.254.169.254), unspecified and reserved
  addresses are refused — whatever spelling the URL used (``0x7f000001``, ``[::ffff:127.0.0.1]``);
- unless ``WEBHOOK_ALLOWED_HOSTS`` names the URL's host or a network holding every address;
- the caller connects to the addresses checked here (``Target.addresses``, in resolver order),
  never resolving the name again, so a DNS answer that changes between check and connect
  (rebinding) is not followed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

from flunq_events.errors import InvalidRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048


class UnsafeURL(InvalidRequest):
    code = "unsafe_url"


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect for a webhook URL: the checked address, and the names to present."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]
    path: str

    @property
    def address(self) -> str:
        return self.addresses[0]

    def connect_url(self, address: str) -> str:
        """The URL with a checked address in place of the host name (for the HTTP client)."""
        host = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: object, field: str = "url") -> SplitResult:
    """The URL's syntax: http(s), a host, no credentials. Raises ``UnsafeURL`` naming the field."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL(f"{field} must be a non-empty string", field=field)
    if len(url) > MAX_URL_LENGTH or any(ch in url for ch in "\x00\r\n\t "):
        raise UnsafeURL(
            f"{field} must be at most {MAX_URL_LENGTH} characters without whitespace", field=field
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"{field} is not a valid URL: {exc}", field=field) from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"{field} must use http or https, got {parts.scheme or 'no scheme'!r}", field=field)
    if not parts.hostname:
        raise UnsafeURL(f"{field} has no host", field=field)
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL(f"{field} must not carry credentials", field=field)
    if port == 0:
        raise UnsafeURL(f"{field} has port 0", field=field)
    return parts


def _allow_list() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    hosts: set[str] = set()
    networks = []
    for entry in settings.WEBHOOK_ALLOWED_HOSTS:
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            hosts.add(entry.lower().rstrip("."))
    return hosts, networks


def is_public(address: Address) -> bool:
    """True for an address a webhook may reach without the allow-list."""
    if address.is_multicast or not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 inside IPv6 (mapped, 6to4, Teredo) must itself be public.
        embedded = [address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None]
        return all(inner is None or is_public(inner) for inner in embedded)
    return True


def _resolve(host: str, port: int, field: str) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"{field}: cannot resolve host {host!r}: {exc}", field=field) from None
    addresses: list[Address] = []
    for info in infos:
        # Drop a scope id (fe80::1%eth0); the address itself decides.
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeURL(f"{field}: host {host!r} has no address", field=field)
    return addresses


def check_url(url: object, field: str = "url") -> Target:
    """Resolve and check ``url``; the returned ``Target`` says which address to connect to."""
    parts = parse_url(url, field)
    host = parts.hostname.rstrip(".").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port, field)
    allowed_hosts, allowed_networks = _allow_list()
    if host not in allowed_hosts:
        for address in addresses:
            if is_public(address) or any(address in network for network in allowed_networks):
                continue
            raise UnsafeURL(
                f"{field}: host {host!r} resolves to {address}, which is not a public address "
                "(loopback, private, link-local, metadata, multicast and reserved addresses are refused "
                "unless WEBHOOK_ALLOWED_HOSTS names them)",
                field=field,
                address=str(address),
            )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(
        url=url, scheme=parts.scheme, host=host, port=port, addresses=tuple(map(str, addresses)), path=path
    )
