"""Store events; an event seen before (in this call or earlier) is stored once.

An event's identity is its `event_id`. Without one, it is the event's content: the same contact, type,
time, device, url, campaign and properties make the same event, stored with a derived event_id
("auto:" + SHA-1 of that content). So every bulk call is idempotent, as the API promises, while two
different events of a contact at the same moment are still both kept.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from contacts.ingest import fastpath
from contacts.ingest import fields as f
from contacts.ingest.common import (
    IngestResult,
    contact_ids_by_external_id,
    in_one_transaction,
    refresh_and_notify,
)
from contacts.models import Event, EventType, Workspace

EVENT_SPEC: dict[str, f.Parser] = {
    "contact": f.text(255, required=True),
    "type": f.text(100, required=True),
    "occurred_at": f.past_datetime,
    "device": f.choice(Event.Device.values),
    "url": f.text(2000),
    "campaign": f.text(255),
    "properties": f.json_object,
    "event_id": f.text(255),
}
REQUIRED = ("contact", "type", "occurred_at")


DERIVED_ID_PREFIX = "auto:"


def derived_event_id(values: dict) -> str:
    """The event_id of an event sent without one, from its content (see the module docstring)."""
    content = json.dumps(
        [
            values["contact"],
            values["type"],
            values["occurred_at"].isoformat(),
            values.get("device"),
            values.get("url"),
            values.get("campaign"),
            values.get("properties") or {},
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return DERIVED_ID_PREFIX + hashlib.sha1(content.encode(), usedforsecurity=False).hexdigest()


def parse_events(records: list[Any], *, root: str = "events") -> tuple[list[tuple[int, dict]], list[dict]]:
    """Validate each record on its own: (index, values) of the good ones, located errors of the bad ones.

    Every good record leaves with an event_id: its own, or one derived from its content, and a time no
    later than the moment of receipt.
    """
    received_at = datetime.now(UTC)
    good, errors = f.parse_records(records, spec=EVENT_SPEC, required=REQUIRED, root=root)
    for _, values in good:
        if values.get("event_id") is None:
            values["event_id"] = derived_event_id(values)  # from the time as sent: a repeat has the same id
        values["occurred_at"] = f.not_after(values["occurred_at"], received_at)
    return good, errors


def ingest_events(*, workspace: Workspace, records: list[Any], create_contacts: bool = False) -> IngestResult:
    """Store events of known contacts (an unknown contact is an error of that record unless `create_contacts`).

    A repeat (same event_id, or same content without one) is stored once and counted as updated.

    >>> ingest_events(workspace=ws, records=[{"contact": "u1", "type": "email_open",
    ...     "occurred_at": "2024-05-01T10:00:00Z", "campaign": "spring", "event_id": "esp-123"}])
    IngestResult(created=1, updated=0, errors=[], contact_ids=[...])   # the same call again: created=0, updated=1
    """
    good, errors = parse_events(records)
    result = IngestResult(errors=errors)
    if good:
        lookup_errors = in_one_transaction(
            lambda: write_events(workspace, good, result, create_contacts=create_contacts)
        )
        result.errors = sorted(errors + lookup_errors, key=lambda error: error["index"])
    return result


def write_events(
    workspace: Workspace,
    records: list[tuple[int, dict]],
    result: IngestResult,
    *,
    create_contacts: bool,
    root: str = "events",
) -> list[dict]:
    """Write validated (index, values) event records; returns the errors of records with an unknown contact."""
    result.created = result.updated = 0
    lookup_errors: list[dict] = []
    contact_ids, new_contact_ids = contact_ids_by_external_id(
        workspace=workspace, external_ids=(values["contact"] for _, values in records), create_missing=create_contacts
    )
    event_ids = sorted({values["event_id"] for _, values in records})
    seen = fastpath.existing_event_ids(workspace=workspace, event_ids=event_ids)
    rows: list[fastpath.EventRow] = []
    types: set[str] = set()
    affected: set[int] = set()
    for index, values in records:
        contact_id = contact_ids.get(values["contact"])
        if contact_id is None:
            lookup_errors.append(
                {"index": index, "path": f"{root}[{index}].contact", "message": "no contact with this external_id"}
            )
            continue
        event_id = values["event_id"]
        affected.add(contact_id)
        if event_id in seen:
            result.updated += 1
            continue
        seen.add(event_id)
        result.created += 1
        types.add(values["type"])
        rows.append(
            (
                contact_id,
                values["type"],
                values["occurred_at"],
                values.get("device"),
                values.get("url"),
                values.get("campaign"),
                values.get("properties") or {},
                event_id,
            )
        )
    fastpath.insert_events(workspace=workspace, rows=rows)
    if types:
        EventType.objects.bulk_create(
            [EventType(workspace=workspace, name=name) for name in sorted(types)], ignore_conflicts=True
        )
    result.contact_ids = sorted(affected)
    data_kinds = {"events", "contact"} if new_contact_ids else {"events"}
    refresh_and_notify(workspace_id=workspace.pk, contact_ids=affected, stats_kinds=("events",), data_kinds=data_kinds)
    return lookup_errors
