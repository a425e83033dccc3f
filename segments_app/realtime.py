"""Real-time segment updates: contacts whose data changed are re-evaluated within seconds.

Path of one ingest call (see README, "Living segments"):

1. Ingest commits and calls `on_contacts_changed(workspace_id, contact_ids, data_kinds)`.
2. That appends the contacts to the workspace's queue (`RealtimeQueueEntry`) and enqueues
   `realtime_task` unless one is already on its way (`RealtimeState.task_pending`, flipped with a
   conditional UPDATE): a burst of ingest calls shares one task, whose drain takes all of them.
3. The task clears the flag, drains the queue in id order and, for every segment of the workspace that
   keeps a stored membership (`refresh_minutes > 0`, computed at least once) and uses data of a kind
   that changed, re-evaluates just those contacts (`membership.recompute_contacts`, trigger
   "real_time"). Queue rows are deleted only after they were applied, so a worker that dies midway
   leaves them for the next run (the partial recompute is idempotent).

Which data a segment uses is derived from its definition: attribute conditions on contact fields and
custom attributes use "contact", computed figures use the data they are derived from (e.g.
`total_spent` -> orders, `last_seen_at` -> events), tag conditions "tags", orders conditions
"orders", event conditions "events", and a segment condition whatever the referenced segment uses,
transitively. A change of kind "contact" may be a new contact, which can enter any segment (a new
contact has "no orders"), so it is checked against every segment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.db import OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from segments_app import catalog as catalog_module
from segments_app.models import RealtimeQueueEntry, RealtimeState, Segment

logger = logging.getLogger(__name__)

CONTACT, TAGS, ORDERS, EVENTS = "contact", "tags", "orders", "events"
DATA_KINDS: tuple[str, ...] = (CONTACT, TAGS, ORDERS, EVENTS)
KIND_BITS: dict[str, int] = {CONTACT: 1, TAGS: 2, ORDERS: 4, EVENTS: 8}
ALL_BITS = sum(KIND_BITS.values())

# The data each computed figure (contacts.stats, docs/computed-figures.md) is derived from.
COMPUTED_FIGURE_KINDS: dict[str, frozenset[str]] = {
    "orders_count": frozenset({ORDERS}),
    "total_spent": frozenset({ORDERS}),
    "avg_order_value": frozenset({ORDERS}),
    "first_order_at": frozenset({ORDERS}),
    "last_order_at": frozenset({ORDERS}),
    "lifecycle_stage": frozenset({ORDERS}),
    "rfm_recency": frozenset({ORDERS}),
    "rfm_frequency": frozenset({ORDERS}),
    "rfm_monetary": frozenset({ORDERS}),
    "rfm_segment": frozenset({ORDERS}),
    "top_category": frozenset({ORDERS}),
    "top_producer": frozenset({ORDERS}),
    "loyalty_tier": frozenset({ORDERS}),
    "last_seen_at": frozenset({EVENTS}),
    "last_email_open_at": frozenset({EVENTS}),
    "last_email_click_at": frozenset({EVENTS}),
    "engagement_score": frozenset({EVENTS}),
    "preferred_device": frozenset({EVENTS}),
    "cart_open_since": frozenset({ORDERS, EVENTS}),
}

# Contacts drained per round; each round applies them to every affected segment, then deletes them.
DRAIN_BATCH = 5000
# A pending task not seen running for this long is assumed lost and enqueued again.
PENDING_STALE_AFTER = timedelta(seconds=60)


def kinds_to_bits(kinds: Iterable[str]) -> int:
    bits = 0
    for kind in kinds:
        if kind not in KIND_BITS:
            raise ValueError(f"unknown data kind {kind!r}; expected one of {', '.join(DATA_KINDS)}")
        bits |= KIND_BITS[kind]
    return bits


def bits_to_kinds(bits: int) -> frozenset[str]:
    return frozenset(kind for kind, bit in KIND_BITS.items() if bits & bit)


# --- which data a definition uses -------------------------------------------------------------------


def definition_kinds(definition: Any, *, definitions: Mapping[int, Any]) -> frozenset[str]:
    """The kinds of data a definition reads, following segment references through `definitions`.

    >>> sorted(definition_kinds({"match": "all", "conditions": [
    ...     {"type": "attribute", "field": "total_spent", "op": "gt", "value": 100},
    ...     {"type": "tag", "op": "has_any", "value": ["vip"]}]}, definitions={}))
    ['orders', 'tags']

    `definitions` maps the workspace's segment ids to their stored definitions. A reference to a
    segment it does not know (deleted since) counts as using every kind: re-evaluating too much is only
    a cost, too little would leave wrong members. A definition that reads no data at all (no conditions:
    every contact) still depends on which contacts exist, so it uses "contact".
    """
    return _kinds(definition, definitions, seen=frozenset()) or frozenset({CONTACT})


def _kinds(node: Any, definitions: Mapping[int, Any], seen: frozenset[int]) -> frozenset[str]:
    if not isinstance(node, dict):
        return frozenset()
    if "conditions" in node:
        found: set[str] = set()
        for child in node.get("conditions") or ():
            found |= _kinds(child, definitions, seen)
        return frozenset(found)
    kind = node.get("type")
    if kind == "attribute":
        return _field_kinds(str(node.get("field", "")))
    if kind == "tag":
        return frozenset({TAGS})
    if kind == "orders":
        return frozenset({ORDERS})
    if kind == "event":
        return frozenset({EVENTS})
    if kind == "segment":
        ref = node.get("segment")
        if ref in seen:  # a cycle is refused when saving; never loop on one here
            return frozenset()
        if ref not in definitions:
            return frozenset(DATA_KINDS)
        return _kinds(definitions[ref], definitions, seen | {ref})
    return frozenset(DATA_KINDS)


_FIXED_CATALOG = catalog_module.Catalog(workspace_id=None)


def _field_kinds(key: str) -> frozenset[str]:
    if key.startswith("attributes."):
        return frozenset({CONTACT})
    field = _FIXED_CATALOG.field(key)
    if field is None:
        return frozenset(DATA_KINDS)
    if field.source == catalog_module.SOURCE_STATS:
        return COMPUTED_FIGURE_KINDS.get(field.key, frozenset(DATA_KINDS))
    return frozenset({CONTACT})


def live_segments(*, workspace_id: int) -> list[Segment]:
    """Segments of the workspace whose stored membership is kept current (not on-demand, computed once)."""
    return list(
        Segment.objects.filter(workspace_id=workspace_id, refresh_minutes__gt=0, computed_at__isnull=False)
        .only("pk", "definition")
        .order_by("pk")
    )


def segments_using(*, workspace_id: int, kinds: Iterable[str]) -> list[int]:
    """Ids of the live segments of the workspace that use data of any of these kinds."""
    wanted = frozenset(kinds)
    definitions = dict(Segment.objects.filter(workspace_id=workspace_id).values_list("pk", "definition"))
    return [
        segment.pk
        for segment in live_segments(workspace_id=workspace_id)
        if _expand(wanted) & definition_kinds(segment.definition, definitions=definitions)
    ]


def _expand(kinds: frozenset[str]) -> frozenset[str]:
    # "contact" may be a new contact: every segment can gain it.
    return frozenset(DATA_KINDS) if CONTACT in kinds else kinds


# --- the ingest hook --------------------------------------------------------------------------------


def on_contacts_changed(*, workspace_id: int, contact_ids: Iterable[int], data_kinds: Iterable[str]) -> None:
    """Called by ingest after commit. data_kinds: subset of {"contact", "tags", "orders", "events"}.

    Queues the contacts and makes sure one real-time task is on its way; returns at once.
    """
    ids = sorted(set(contact_ids))
    bits = kinds_to_bits(data_kinds)
    if not ids or not bits:
        return
    if not Segment.objects.filter(workspace_id=workspace_id, refresh_minutes__gt=0, computed_at__isnull=False).exists():
        return  # nothing stored to keep current
    now = timezone.now()
    RealtimeQueueEntry.objects.bulk_create(
        [RealtimeQueueEntry(workspace_id=workspace_id, contact_id=cid, kinds=bits, queued_at=now) for cid in ids],
        batch_size=1000,
    )
    request_processing(workspace_id=workspace_id)


def request_processing(*, workspace_id: int) -> bool:
    """Enqueue the workspace's real-time task unless one is pending; True when this call enqueued it."""
    from segments_app.tasks import realtime_task

    now = timezone.now()
    claimed = (
        RealtimeState.objects.filter(workspace_id=workspace_id)
        .filter(Q(task_pending=False) | Q(enqueued_at__lt=now - PENDING_STALE_AFTER))
        .update(task_pending=True, enqueued_at=now)
    )
    if not claimed:
        _, created = RealtimeState.objects.get_or_create(
            workspace_id=workspace_id, defaults={"task_pending": True, "enqueued_at": now}
        )
        if not created:
            return False  # a task is on its way and will drain what was just queued
    realtime_task.delay(workspace_id)
    return True


def enqueue_pending_workspaces() -> list[int]:
    """Safety net run by the dispatcher: workspaces with queued contacts and no live task get one."""
    workspace_ids = list(RealtimeQueueEntry.objects.values_list("workspace_id", flat=True).distinct().order_by())
    return [ws for ws in sorted(workspace_ids) if request_processing(workspace_id=ws)]


# --- the task's work --------------------------------------------------------------------------------


def process_workspace_queue(*, workspace_id: int) -> int:
    """Drain the workspace's queue and apply it to the affected segments; returns contacts processed."""
    from segments_app.membership import recompute_contacts, record_failure

    # First: from now on a new ingest call enqueues a new task, so nothing queued after the drain
    # below started can be left behind.
    RealtimeState.objects.filter(workspace_id=workspace_id).update(task_pending=False)
    processed = 0
    while True:
        rows = list(
            RealtimeQueueEntry.objects.filter(workspace_id=workspace_id)
            .order_by("pk")
            .values_list("pk", "contact_id", "kinds")[:DRAIN_BATCH]
        )
        if not rows:
            return processed
        row_ids = [row[0] for row in rows]
        bits_by_contact: dict[int, int] = {}
        for _, contact_id, bits in rows:
            bits_by_contact[contact_id] = bits_by_contact.get(contact_id, 0) | bits
        definitions = dict(Segment.objects.filter(workspace_id=workspace_id).values_list("pk", "definition"))
        for segment in live_segments(workspace_id=workspace_id):
            used = kinds_to_bits(definition_kinds(segment.definition, definitions=definitions))
            contact_ids = [cid for cid, bits in bits_by_contact.items() if _expand_bits(bits) & used]
            if not contact_ids:
                continue
            try:
                recompute_contacts(segment_id=segment.pk, contact_ids=contact_ids)
            except OperationalError:
                raise  # transient: the task retries, the queue rows are still there
            except Exception as exc:  # noqa: BLE001 - one broken segment must not block the others
                logger.exception("real-time update of segment %s failed", segment.pk)
                record_failure(segment_id=segment.pk, error=exc)
        # Exactly the rows read: a row with a smaller id may commit later (ids are handed out before
        # commit), and it must stay for the next run.
        with transaction.atomic():
            for start in range(0, len(row_ids), 1000):
                RealtimeQueueEntry.objects.filter(pk__in=row_ids[start : start + 1000]).delete()
        processed += len(bits_by_contact)


def _expand_bits(bits: int) -> int:
    return ALL_BITS if bits & KIND_BITS[CONTACT] else bits
