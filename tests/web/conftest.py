"""Fixtures of the page tests: signed-in clients of a workspace with each role."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from contacts.models import Workspace, WorkspaceMember


def signed_in(workspace: Workspace, role: str, username: str) -> Client:
    user = get_user_model().objects.create_user(username=username)  # no password: no slow hashing
    WorkspaceMember.objects.create(workspace=workspace, user=user, role=role)
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def editor(workspace) -> Client:
    """A browser session of an editor of `workspace`."""
    return signed_in(workspace, WorkspaceMember.Role.EDITOR, "editor")


@pytest.fixture
def viewer(workspace) -> Client:
    return signed_in(workspace, WorkspaceMember.Role.VIEWER, "viewer")


HTMX = {"HTTP_HX_REQUEST": "true"}


def htmx(target: str) -> dict:
    """Headers of an htmx request aimed at the fragment with this id."""
    return {**HTMX, "HTTP_HX_TARGET": target}
