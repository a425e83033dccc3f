"""Segment / RudderStack messages through the same ingest services, in one transaction.

Messages are mapped (contacts.segment_tracking), each message's records validated on their own, and the
good ones written grouped by kind in the order they came: contacts (identify), products and orders
(Order Completed), then events (track, page, screen), so an identify and a track of the same user in
one batch land on one contact. A message whose `messageId` the workspace has already processed is not
written again (ProcessedMessage, recorded in the same transaction as the writes).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from contacts.ingest.common import IngestResult, in_one_transaction
from contacts.ingest.contacts import parse_contacts, write_contacts
from contacts.ingest.events import parse_events, write_events
from contacts.ingest.orders import parse_orders, write_orders
from contacts.ingest.products import parse_products, write_products
from contacts.models import ProcessedMessage, Workspace
from contacts.segment_tracking import MappedMessage, MappedRecord, map_message, now_utc, translate_path

MESSAGE_ID_MAX_LENGTH = ProcessedMessage._meta.get_field("message_id").max_length

PARSERS: dict[str, Callable[..., tuple[list[tuple[int, dict]], list[dict]]]] = {
    "contacts": parse_contacts,
    "products": parse_products,
    "orders": parse_orders,
    "events": parse_events,
}


@dataclass
class SegmentResult:
    """`stored`: messages accepted, of which `repeated` were not written again (their `messageId` was already
    processed); `skipped`: acknowledged but not stored (anonymous, alias, group)."""

    stored: int = 0
    skipped: int = 0
    repeated: int = 0
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
    SegmentResult(stored=2, skipped=0, repeated=0, errors=[], contact_ids=[...])
    """
    received_at = received_at or now_utc()
    result = SegmentResult()
    accepted: list[MappedMessage] = []
    for index, message in enumerate(messages):
        path = f"{root}[{index}]" if root else ""
        mapped = map_message(
            message, path=path, received_at=received_at, forced_type=forced_type, batch_context=batch_context
        )
        if mapped is None:
            result.skipped += 1
            continue
        errors = mapped.errors or _validate(mapped) or _message_id_errors(mapped)
        if errors:
            result.errors.extend(errors)
            continue
        accepted.append(mapped)
    result.stored = len(accepted)
    if accepted:
        result.contact_ids, result.repeated = in_one_transaction(lambda: _write_new(workspace, accepted, received_at))
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


def _message_id_errors(mapped: MappedMessage) -> list[dict]:
    """A `messageId` must fit its column; a track's is already checked as the event's `event_id`."""
    if mapped.message_id is None or len(mapped.message_id) <= MESSAGE_ID_MAX_LENGTH:
        return []
    message = f"must be at most {MESSAGE_ID_MAX_LENGTH} characters (got {len(mapped.message_id)})"
    return [{"path": mapped.locate("messageId"), "message": message}]


def _message_path(mapped: MappedMessage, record: MappedRecord, record_path: str) -> str:
    # Records were validated alone under root "", so their paths start with "[0]".
    return translate_path(mapped, record, record_path[len("[0]") :].lstrip("."))


def _write_new(workspace: Workspace, accepted: list[MappedMessage], received_at: datetime) -> tuple[list[int], int]:
    """In the write transaction: write the messages not processed before; returns (contact ids, repeats)."""
    new = _new_messages(workspace, accepted, received_at)
    by_kind: dict[str, list[dict]] = {kind: [] for kind in PARSERS}
    for mapped in new:
        for record in mapped.records:
            by_kind[record.kind].append(record.values)
    return _write(workspace, by_kind), len(accepted) - len(new)


def _new_messages(workspace: Workspace, accepted: list[MappedMessage], received_at: datetime) -> list[MappedMessage]:
    """Messages without `messageId`, and the first message of each id this workspace has not processed yet.

    A repeat is dropped rather than re-applied: a retried older identify or Order Completed would otherwise
    overwrite what a newer message wrote.
    """
    message_ids = {mapped.message_id for mapped in accepted if mapped.message_id is not None}
    claimed = _claim_message_ids(workspace, message_ids, received_at)
    new: list[MappedMessage] = []
    for mapped in accepted:
        if mapped.message_id is None:
            new.append(mapped)
        elif mapped.message_id in claimed:
            claimed.discard(mapped.message_id)  # a later repeat in the same call is a no-op too
            new.append(mapped)
    return new


def prune_processed_messages(*, now: datetime | None = None) -> int:
    """Forget message ids older than SEGMENT_MESSAGE_ID_RETENTION_DAYS (daily, Celery beat); returns how many.

    Segment's and RudderStack's libraries retry a message for hours, not weeks: past the retention a repeat
    is no longer expected, and the table would otherwise grow by a row per message forever. Mostly one
    sequential pass a day over a table of narrow rows; an index on the time would cost every message.
    """
    cutoff = (now or now_utc()) - timedelta(days=settings.SEGMENT_MESSAGE_ID_RETENTION_DAYS)
    deleted, _ = ProcessedMessage.objects.filter(received_at__lt=cutoff).delete()
    return deleted


def _claim_message_ids(workspace: Workspace, message_ids: Collection[str], received_at: datetime) -> set[str]:
    """Record the ids as processed in the caller's transaction; returns those no other call had recorded.

    INSERT ... ON CONFLICT DO NOTHING RETURNING (PostgreSQL, SQLite 3.35+) says which rows this statement
    inserted, so the check and the claim are one statement: a concurrent call claiming the same id waits on
    the unique index until this transaction ends, then gets nothing back (or the id, if this one rolled
    back). Exactly one of them applies the message. Sorted, so two calls sharing ids queue instead of
    deadlocking on each other's rows.
    """
    if not message_ids:
        return set()
    ordered = sorted(message_ids)
    table = connection.ops.quote_name(ProcessedMessage._meta.db_table)
    rows = ", ".join(["(%s, %s, %s)"] * len(ordered))
    sql = (
        f"INSERT INTO {table} (workspace_id, message_id, received_at) VALUES {rows} "
        "ON CONFLICT (workspace_id, message_id) DO NOTHING RETURNING message_id"
    )
    at = connection.ops.adapt_datetimefield_value(received_at)
    params = [value for message_id in ordered for value in (workspace.pk, message_id, at)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


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
