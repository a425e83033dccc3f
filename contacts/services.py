"""Writes on contacts outside ingest: erasure (the right to be forgotten)."""

from __future__ import annotations

from django.db import transaction

from contacts.models import Contact, Workspace


@transaction.atomic
def erase_contact(*, workspace: Workspace, external_id: str) -> bool:
    """Delete the contact and everything about it: orders and their items, events, tags, figures,
    segment memberships and change-log rows (all cascade from the contact). False when there is no such contact.

    Products stay: they belong to the catalogue, not to the person.
    """
    contact = Contact.objects.filter(workspace=workspace, external_id=external_id).only("pk").first()
    if contact is None:
        return False
    Contact.objects.filter(pk=contact.pk).delete()
    return True
