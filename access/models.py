"""API tokens: a name, scopes and an optional tenant; only the token's sha256 is stored."""

import hashlib
import secrets

from django.contrib.postgres.fields import ArrayField
from django.db import models

SCOPES = ("events:read", "events:write", "admin")
TOKEN_PREFIX = "flq_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    name = models.CharField(max_length=200, unique=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = ArrayField(models.CharField(max_length=32), default=list)
    tenant = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "flunq_api_tokens"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def issue(cls, name: str, scopes: list[str], tenant: str | None = None) -> tuple["ApiToken", str]:
        """Create a token; the plain token is returned once and never stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(name=name, token_hash=hash_token(token), scopes=scopes, tenant=tenant)
        return row, token
