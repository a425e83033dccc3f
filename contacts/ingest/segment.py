"""Segment / RudderStack messages through the same ingest services, in one transaction.

Messages are mapped (contacts.segment_tracking), each message's records validated on their own, and the
good ones written grouped by kind in the order they came: contacts (identify), products and orders
(Order Completed), then events (track, page, screen), so an identify and a track of the same user in
one batch land on one contact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contacts.ingest.common import IngestResult, in_one_transaction
from contacts.ingest.contacts import parse_contacts, write_contacts
from contacts.ingest.events import parse_events, write_events
from contacts.ingest.orders import parse_orders, write_orders
from contacts.ingest.products import parse_products, write_products
from contacts.models import Workspace
from contacts.segment_tracking import MappedMessage, MappedRecord, map_message, now_utc, translate_path

PARSERS: dict[str, Callable[..., tuple[list[tuple[int, dict]], list[dict]]]] = {
    "contacts": parse_contacts,
    "products": parse_products,
    "orders": parse_orders,
    "events": parse_events,
}


@dataclass
class SegmentResult:
    """`stored`: messages written; `skipped`: acknowledged but not stored (anonymous, alias, group)."""

    stored: int = 0
    skipped: int = 0
    errors: list[dict] = field(default_factory=list)
    contact_ids: list[int] = field(default_factory=list)


def ingest_segment_messages(
    *,
    workspace: Workspace,
    messages: list[Any],
    root: str = "batch",
    forced_type: str | None = None,
    batch_context: dict | None = None,
    received_at: datetime | None = None,
) -> SegmentResult:
    """Store Segment messages; a bad message is reported at its path (e.g. `batch[2].traits.email`), the rest stored.

    >>> ingest_segment_messages(workspace=ws, messages=[
    ...     {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com", "plan": "pro"}},
    ...     {"type": "track", "userId": "u1", "event": "Product Viewed", "messageId": "m-2"}])
    SegmentResult(stored=2, skipped=0, errors=[], contact_ids=[...])
    """
    received_at = received_at or now_utc()
    result = SegmentResult()
    by_kind: dict[str, list[dict]] = {kind: [] for kind in PARSERS}
    for index, message in enumerate(messages):
        path = f"{root}[{index}]" if root else ""
        mapped = map_message(
            message, path=path, received_at=received_at, forced_type=forced_type, batch_context=batch_context
        )
        if mapped is None:
            result.skipped += 1
            continue
        errors = mapped.errors or _validate(mapped)
        if errors:
            result.errors.extend(errors)
            continue
        result.stored += 1
        for record in mapped.records:
            by_kind[record.kind].append(record.values)
    if result.stored:
        result.contact_ids = in_one_transaction(lambda: _write(workspace, by_kind))
    return result


def _validate(mapped: MappedMessage) -> list[dict]:
    """Run each record through its kind's validation; values are replaced by the parsed ones."""
    errors: list[dict] = []
    for record in mapped.records:
        good, record_errors = PARSERS[record.kind]([record.values], root="")
        if good:
            record.values = good[0][1]
        errors.extend(
            {"path": _message_path(mapped, record, error["path"]), "message": error["message"]}
            for error in record_errors
        )
    return errors


def _message_path(mapped: MappedMessage, record: MappedRecord, record_path: str) -> str:
    # Records were validated alone under root "", so their paths start with "[0]".
    return translate_path(mapped, record, record_path[len("[0]") :].lstrip("."))


def _write(workspace: Workspace, by_kind: dict[str, list[dict]]) -> list[int]:
    contact_ids: set[int] = set()
    writers = (("contacts", write_contacts), ("products", write_products), ("orders", write_orders))
    for kind, writer in writers:
        if by_kind[kind]:
            result = IngestResult()
            writer(workspace, by_kind[kind], result)
            contact_ids.update(result.contact_ids)
    if by_kind["events"]:
        result = IngestResult()
        # Segment sources send track calls before (or without) identify: unknown users become bare contacts.
        write_events(workspace, list(enumerate(by_kind["events"])), result, create_contacts=True)
        contact_ids.update(result.contact_ids)
    return sorted(contact_ids)
