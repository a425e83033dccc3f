"""Reads of contacts for the API: the list (filtered, paginated by the view) and one contact in full."""

from __future__ import annotations

from django.db.models import QuerySet

from contacts.models import Contact, ContactStats, Workspace
from segments_app.models import SegmentMember


def contact_list(*, workspace: Workspace) -> QuerySet[Contact]:
    """The workspace's contacts in id order, with their tags loaded in one extra query per page."""
    return Contact.objects.filter(workspace=workspace).prefetch_related("tags").order_by("id")


def contact_detail(*, workspace: Workspace, external_id: str) -> Contact | None:
    """One contact with its figures (`contact.stats`) and the segments it is in now (`contact.current_segments`).

    Another workspace's external_id is simply not found.
    """
    contact = (
        Contact.objects.filter(workspace=workspace, external_id=external_id)
        .select_related("stats")
        .prefetch_related("tags")
        .first()
    )
    if contact is None:
        return None
    if not hasattr(contact, "stats"):
        # Ingest always creates the row; a contact made some other way shows the figures of no data.
        contact.stats = ContactStats(contact=contact, workspace=workspace)
    contact.current_segments = [
        {"id": segment_id, "name": name}
        for segment_id, name in SegmentMember.objects.filter(contact=contact, segment__workspace=workspace)
        .order_by("segment__name", "segment_id")
        .values_list("segment_id", "segment__name")
    ]
    return contact
