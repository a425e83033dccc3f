"""Issuing and revoking API keys. The raw key exists only in the return value: the database keeps its hash."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from contacts.models import ApiKey, Workspace


@transaction.atomic
def issue_api_key(*, workspace_name: str, key_name: str = "") -> tuple[ApiKey, str, bool]:
    """Create a key for the named workspace, creating the workspace if it does not exist.

    Returns (key row, raw key, whether the workspace was created).
    """
    workspace, created = Workspace.objects.get_or_create(name=workspace_name)
    api_key = ApiKey(workspace=workspace, name=key_name)
    raw_key = api_key.set_new_key()
    api_key.save()
    return api_key, raw_key, created


def revoke_api_key(*, api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
