"""Upsert contacts by `external_id`: the fields a record names change, the others stay as they are."""

from __future__ import annotations

from typing import Any

from contacts.ingest import fields as f
from contacts.ingest.common import IngestResult, in_one_transaction, refresh_and_notify
from contacts.models import Contact, ContactTag, Tag, Workspace
from contacts.planner_stats import note_rows_written

CONTACT_SPEC: dict[str, f.Parser] = {
    "external_id": f.text(255, required=True),
    "email": f.email,
    "first_name": f.text(150),
    "last_name": f.text(150),
    "phone": f.text(50),
    "country": f.country,
    "city": f.text(150),
    "gender": f.text(50),
    "birth_date": f.optional_date,
    "created_at": f.optional_datetime,
    "email_status": f.choice(Contact.EmailStatus.values),
    "traffic_source": f.choice(Contact.TrafficSource.values),
    "utm_campaign": f.text(255),
    "tags": f.tag_names,
    "attributes": f.attributes,
}
REQUIRED = ("external_id",)
# Columns an upsert may write; `attributes` is merged and `tags` live in their own table.
PLAIN_COLUMNS = [name for name in CONTACT_SPEC if name not in {"external_id", "tags", "attributes", "created_at"}]
WRITTEN_COLUMNS = [*PLAIN_COLUMNS, "created_at", "attributes", "updated_at"]


def parse_contacts(records: list[Any], *, root: str = "contacts") -> tuple[list[tuple[int, dict]], list[dict]]:
    """Validate each record on its own: (index, values) of the good ones, located errors of the bad ones."""
    return f.parse_records(records, spec=CONTACT_SPEC, required=REQUIRED, root=root)


def ingest_contacts(*, workspace: Workspace, records: list[Any]) -> IngestResult:
    """Upsert contacts by external_id; `tags` replace the contact's tags, `attributes` merge (null removes a key).

    >>> ingest_contacts(workspace=ws, records=[{"external_id": "u1", "email": "a@example.com", "tags": ["vip"]}])
    IngestResult(created=1, updated=0, errors=[], contact_ids=[...])
    """
    good, errors = parse_contacts(records)
    result = IngestResult(errors=errors)
    if good:
        in_one_transaction(lambda: write_contacts(workspace, [values for _, values in good], result))
    return result


def write_contacts(workspace: Workspace, records: list[dict], result: IngestResult) -> None:
    """Write already validated contact records (also used by the Segment API for `identify`)."""
    result.created = result.updated = 0
    external_ids = sorted({values["external_id"] for values in records})
    # Locked so that two calls merging attributes into the same contact cannot lose each other's keys.
    existing = {
        contact.external_id: contact
        for contact in Contact.objects.select_for_update()
        .filter(workspace=workspace, external_id__in=external_ids)
        .order_by("external_id")
    }
    stored = {external_id: _written_values(contact) for external_id, contact in existing.items()}
    merged: dict[str, Contact] = {}
    tags_by_external_id: dict[str, list[str]] = {}
    for values in records:
        external_id = values["external_id"]
        contact = merged.get(external_id) or existing.get(external_id)
        if contact is None:
            contact = Contact(workspace=workspace, external_id=external_id, attributes={})
            result.created += 1
        else:
            result.updated += 1
        _apply(contact, values)
        merged[external_id] = contact
        if "tags" in values:
            tags_by_external_id[external_id] = values["tags"]

    rows = [merged[external_id] for external_id in sorted(merged)]
    # A record that changes nothing is not written: its contact keeps its updated_at (a repeat is a no-op).
    changed = [contact for contact in rows if stored.get(contact.external_id) != _written_values(contact)]
    for contact in changed:
        # Rows loaded from the database keep their pk; an upsert row must not carry it.
        contact.pk = None
    if changed:
        note_rows_written({Contact: len(changed)})
        Contact.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=["workspace", "external_id"],
            update_fields=WRITTEN_COLUMNS,
        )
    if any(contact.pk is None for contact in rows):
        ids = dict(
            Contact.objects.filter(workspace=workspace, external_id__in=external_ids).values_list("external_id", "id")
        )
        for contact in rows:
            contact.pk = ids[contact.external_id]
    ids_by_external_id = {contact.external_id: contact.pk for contact in rows}
    if tags_by_external_id:
        _replace_tags(
            workspace,
            {ids_by_external_id[external_id]: names for external_id, names in tags_by_external_id.items()},
        )
    result.contact_ids = sorted(ids_by_external_id.values())
    data_kinds = {"contact", "tags"} if tags_by_external_id else {"contact"}
    refresh_and_notify(
        workspace_id=workspace.pk, contact_ids=result.contact_ids, stats_kinds=("contact",), data_kinds=data_kinds
    )


def _written_values(contact: Contact) -> tuple:
    """What an upsert would write for the contact (updated_at aside), to tell a change from a repeat."""
    return (*(getattr(contact, name) for name in PLAIN_COLUMNS), contact.created_at, contact.attributes)


def _apply(contact: Contact, values: dict) -> None:
    for name in PLAIN_COLUMNS:
        if name in values:
            setattr(contact, name, values[name])
    if values.get("created_at") is not None:
        contact.created_at = values["created_at"]
    if "attributes" in values:
        merged = dict(contact.attributes or {})
        for key, value in values["attributes"].items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        contact.attributes = merged


def _replace_tags(workspace: Workspace, names_by_contact: dict[int, list[str]]) -> None:
    """Make each contact's tags exactly the given names, creating unknown tags."""
    all_names = sorted({name for names in names_by_contact.values() for name in names})
    if all_names:
        Tag.objects.bulk_create([Tag(workspace=workspace, name=name) for name in all_names], ignore_conflicts=True)
    tag_ids = dict(Tag.objects.filter(workspace=workspace, name__in=all_names).values_list("name", "id"))
    wanted = {(contact_id, tag_ids[name]) for contact_id, names in names_by_contact.items() for name in names}
    current = {
        (contact_id, tag_id): pk
        for pk, contact_id, tag_id in ContactTag.objects.filter(contact_id__in=list(names_by_contact)).values_list(
            "pk", "contact_id", "tag_id"
        )
    }
    stale = [pk for pair, pk in current.items() if pair not in wanted]
    note_rows_written({ContactTag: len(stale) + len(wanted - set(current))})
    if stale:
        ContactTag.objects.filter(pk__in=stale).delete()
    ContactTag.objects.bulk_create(
        [
            ContactTag(workspace=workspace, contact_id=contact_id, tag_id=tag_id)
            for contact_id, tag_id in sorted(wanted - set(current))
        ],
        ignore_conflicts=True,
    )
