"""Real-time re-evaluation of segments when a contact's data changes (issue 4)."""

from __future__ import annotations

from collections.abc import Iterable


def on_contacts_changed(*, workspace_id: int, contact_ids: Iterable[int], data_kinds: Iterable[str]) -> None:
    """Called by ingest after commit. data_kinds: subset of {"contact", "tags", "orders", "events"}."""
    # Filled in by the membership work; ingest already calls it.
    return None
