"""The quick start's demo setup: workspaces with data, a demo login and an API key. Safe to run again."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from contacts.api_keys import issue_api_key
from contacts.demo.loader import DEFAULT_WORKSPACE, Progress, seed_workspace
from contacts.models import ApiKey, Contact, Workspace, WorkspaceMember

DEMO_USERNAME = "demo"
SECOND_WORKSPACE = "Second Shop"
SECOND_WORKSPACE_CONTACTS = 40


@dataclass
class DemoSetupResult:
    seeded: list[str] = field(default_factory=list)  # names of the workspaces filled now
    user_created: bool = False
    password: str | None = None  # None when the user existed and no password is on file
    api_key: str | None = None  # a new raw key, or None if the workspace already had one


def password_file() -> Path:
    return Path(getattr(settings, "VAR_DIR", Path(settings.BASE_DIR) / "var")) / "demo_password.txt"


def setup_demo(
    *, contacts: int = 2000, seed: int = 1, now: datetime, password: str | None = None, progress: Progress | None = None
) -> DemoSetupResult:
    """Create what is missing of the demo, never change what exists.

    "Demo Shop" (seeded with `contacts` contacts if it has none) with the user `demo` as owner, and
    "Second Shop" (a few contacts) where demo is a viewer, so the workspace switcher has two entries.
    """
    result = DemoSetupResult()
    demo_shop, _ = Workspace.objects.get_or_create(name=DEFAULT_WORKSPACE)
    second_shop, _ = Workspace.objects.get_or_create(name=SECOND_WORKSPACE)
    for workspace, size, workspace_seed in ((demo_shop, contacts, seed), (second_shop, SECOND_WORKSPACE_CONTACTS,
                                                                         seed + 1)):
        if not Contact.objects.filter(workspace=workspace).exists():
            seed_workspace(workspace=workspace, contacts=size, seed=workspace_seed, now=now, progress=progress)
            result.seeded.append(workspace.name)

    with transaction.atomic():
        user, result.user_created, result.password = _demo_user(password)
        _ensure_role(demo_shop, user, WorkspaceMember.Role.OWNER)
        _ensure_role(second_shop, user, WorkspaceMember.Role.VIEWER)
        if not ApiKey.objects.filter(workspace=demo_shop, revoked_at__isnull=True).exists():
            _, result.api_key, _ = issue_api_key(workspace_name=demo_shop.name, key_name="demo")
    return result


def _demo_user(password: str | None):
    """The demo user; a new one gets `password`, the one on file, or a fresh one (then kept on file)."""
    user_model = get_user_model()
    stored = password_file()
    user = user_model.objects.filter(username=DEMO_USERNAME).first()
    if user is not None:
        on_file = stored.read_text().strip() if stored.exists() else None
        return user, False, on_file
    if password is None and stored.exists():
        password = stored.read_text().strip() or None
    password = password or secrets.token_urlsafe(12)
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_text(password + "\n")
    stored.chmod(0o600)
    # Staff and superuser so the demo login also opens the admin (API keys, raw rows).
    user = user_model.objects.create_superuser(username=DEMO_USERNAME, email="demo@example.com", password=password)
    return user, True, password


def _ensure_role(workspace: Workspace, user, role: str) -> None:
    WorkspaceMember.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
