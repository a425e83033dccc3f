"""Helpers shared by the segment engine tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contacts.models import Contact, ContactStats, Workspace
from segments_app.selectors import segment_contacts

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def members(workspace: Workspace, definition, *, now: datetime = NOW, segment_id: int | None = None) -> set[str]:
    """External ids of the contacts matching `definition` at `now`."""
    queryset = segment_contacts(workspace=workspace, definition=definition, now=now, segment_id=segment_id)
    return set(queryset.values_list("external_id", flat=True))


def set_stats(contact: Contact, **values) -> None:
    ContactStats.objects.filter(contact=contact).update(**values)


def ALL(*conditions) -> dict:
    return {"match": "all", "conditions": list(conditions)}


def ANY(*conditions) -> dict:
    return {"match": "any", "conditions": list(conditions)}


def NONE(*conditions) -> dict:
    return {"match": "none", "conditions": list(conditions)}


def attr(field: str, op: str, *value) -> dict:
    condition = {"type": "attribute", "field": field, "op": op}
    if value:
        (condition["value"],) = value
    return condition
