"""Who is calling: the identity every API (REST, gRPC, websockets) checks scopes and tenant on."""

from __future__ import annotations

from dataclasses import dataclass

from access.models import SCOPES


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    scopes: frozenset[str]
    tenant: str | None = None

    is_authenticated = True
    is_anonymous = False

    def has_scope(self, scope: str) -> bool:
        # admin implies every other scope; write does not imply read.
        return scope in self.scopes or "admin" in self.scopes


# Used when AUTH_REQUIRED is off (local development): everything is allowed.
LOCAL_DEVELOPER = Principal(name="local-developer", scopes=frozenset(SCOPES))
