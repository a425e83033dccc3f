"""Writes on contacts outside ingest: erasure (the right to be forgotten), history edited by hand."""

from __future__ import annotations

from collections.abc import Collection

from django.db import transaction

from contacts.ingest.common import refresh_and_notify
from contacts.models import Contact, Workspace
from segments_app.membership import record_erasure_exits


@transaction.atomic
def erase_contact(*, workspace: Workspace, external_id: str) -> bool:
    """Delete the contact and everything about it: orders and their items, events, tags, figures,
    segment memberships and change-log rows (all cascade from the contact). False when there is no such contact.

    Before that, the contact leaves every segment it is in like any other exit
    (`segments_app.membership.record_erasure_exits`): an "exited" change in each segment's feed and webhooks,
    carrying only the external_id the ESP already has, and the segments' sizes drop by one. So an ESP keeping
    its lists in sync stops mailing the erased person. The contact's row is locked first, so no recompute can
    add it to a segment while it is being erased.

    Products stay: they belong to the catalogue, not to the person.
    """
    contact = (
        Contact.objects.select_for_update()
        .filter(workspace=workspace, external_id=external_id)
        .only("pk", "external_id")
        .first()
    )
    if contact is None:
        return False
    record_erasure_exits(contact_id=contact.pk, external_id=contact.external_id)
    Contact.objects.filter(pk=contact.pk).delete()
    return True


@transaction.atomic
def edited_by_hand(*, workspace_id: int, contact_ids: Collection[int], kinds: Collection[str]) -> None:
    """After contacts, their tags, orders, items or events were changed by hand (the admin), exactly as after
    ingest: the contacts' computed figures follow in the same transaction (a new contact gets its row), and
    their segments re-evaluate them after commit.

    `kinds` name what changed: "contact", "tags", "orders", "events". Segment conditions on the history are
    answered from the figures where they can be (`segments_app.compiler`), so no door may change the
    history without them.
    """
    ids = sorted({int(pk) for pk in contact_ids if pk is not None})
    existing = list(Contact.objects.filter(workspace_id=workspace_id, pk__in=ids).values_list("pk", flat=True))
    refresh_and_notify(workspace_id=workspace_id, contact_ids=existing, stats_kinds=kinds, data_kinds=kinds)
