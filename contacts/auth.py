"""API access: Bearer keys scoped to one workspace, and a per-key rate limit."""

from __future__ import annotations

import base64
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from contacts.models import ApiKey, hash_api_key

# last_used_at is written at most this often per key, to keep hot paths read-only.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyPrincipal:
    """What `request.user` is for an API call: a key, not a person."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.pk = None

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


def find_active_key(raw_key: str) -> ApiKey | None:
    if not raw_key:
        return None
    api_key = (
        ApiKey.objects.select_related("workspace")
        .filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True)
        .first()
    )
    if api_key is None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def raw_key_from_request(request: Request) -> str:
    """The key from `Authorization: Bearer <key>`, or HTTP Basic user (the Segment write key)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[0]
    return ""


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        raw_key = raw_key_from_request(request)
        if not raw_key:
            return None
        api_key = find_active_key(raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("invalid or revoked API key")
        request.workspace = api_key.workspace
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class HasWorkspace(permissions.BasePermission):
    """Every API call must name a workspace through its key."""

    def has_permission(self, request: Request, view: object) -> bool:
        return getattr(request, "workspace", None) is not None


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    scope = "api_key"

    def get_cache_key(self, request: Request, view: object) -> str | None:
        api_key = getattr(request, "auth", None)
        if not isinstance(api_key, ApiKey):
            return None
        return f"throttle:api_key:{api_key.pk}"
