"""Stored membership: recompute a segment, diff in SQL, snapshot and change log in one transaction.

A recompute evaluates the segment's definition now and makes the stored members equal to the result:

    entered = result - stored members         (INSERT ... SELECT ... WHERE NOT EXISTS)
    exited  = stored members - result         (DELETE ... WHERE NOT EXISTS ... RETURNING)
    change log += entered, exited             (INSERT INTO change SELECT ...)

all in one transaction that holds the segment's lock, together with the snapshot (size, entered, exited,
duration, trigger) and the segment's `size`/`computed_at`. So a reader sees either the previous
membership or the new one, two recomputes of one segment run one after the other (the second finds
nothing to change), and a crash midway rolls back to the previous state. Member ids never travel to
Python: on PostgreSQL the whole diff is one statement of data-modifying CTEs over the compiled query,
elsewhere (SQLite, the quick start) a few statements over a temporary table.

A partial recompute (`recompute_contacts`, the real-time path) does the same restricted to a few
contacts: the definition is evaluated for those contacts only and only their entries and exits are
applied.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from contacts.models import Workspace
from contacts.planner_stats import note_rows_written
from segments_app.catalog import Catalog, build_catalog
from segments_app.definition import DefinitionError, Group, WorkspaceSegments, parse_definition
from segments_app.models import Segment, SegmentChange, SegmentMember, SegmentSnapshot
from segments_app.selectors import Matching, contact_ids_sql, matching_ids

logger = logging.getLogger(__name__)

Trigger = SegmentSnapshot.Trigger

# pg_advisory_xact_lock(class, id): the class keeps our keys apart from other advisory locks.
_LOCK_CLASS = 0x5E6
# Contacts per statement in a partial recompute (bounded parameter lists, SQLite included).
_CONTACT_CHUNK = 1000
_QUERY_CANCELED = "57014"


class RecomputeTimeout(Exception):
    """The recompute ran longer than SEGMENT_RECOMPUTE_TIMEOUT_S: recorded, not retried at once."""


@dataclass(frozen=True)
class _Diff:
    size: int
    entered: int
    exited: int
    snapshot_id: int | None


# --- scheduling -------------------------------------------------------------------------------------


def schedule_recompute(*, segment_id: int, trigger: str) -> None:
    """Recompute the segment's stored membership soon: enqueues the Celery task after the current commit.

    Without a broker (CELERY_BROKER_URL empty) the task runs in-process at commit. A broker failure is
    logged, not raised: the data is committed by then, and the dispatcher computes a segment that was
    never computed on its next tick.
    """
    Trigger(trigger)  # refuse an unknown trigger here, not later in a worker

    def enqueue() -> None:
        from segments_app.tasks import recompute_segment_task

        recompute_segment_task.delay(segment_id, trigger)

    transaction.on_commit(enqueue, robust=True)


# --- recompute --------------------------------------------------------------------------------------


def recompute_membership(*, segment_id: int, trigger: str, now: datetime | None = None) -> SegmentSnapshot:
    """Make the stored members of the segment equal to its definition evaluated at `now`; returns the snapshot.

    Raises DefinitionError when the definition no longer compiles (e.g. a referenced segment was
    deleted) and RecomputeTimeout past SEGMENT_RECOMPUTE_TIMEOUT_S; the stored state is then unchanged.
    The caller records failures (`record_failure`).
    """
    Trigger(trigger)
    started = time.monotonic()
    now = now or timezone.now()
    with _statement_timeout_as_error(), transaction.atomic():
        previous_settings = _tune_transaction()
        segment = _lock_segment(segment_id)
        target_sql, target_params = _compiled_ids_sql(segment, now=now)
        diff = _apply_diff(
            segment=segment, trigger=trigger, now=now, target_sql=target_sql, target_params=target_params,
            contact_ids=None, size_before=None,
        )
        duration_ms = _elapsed_ms(started)
        SegmentSnapshot.objects.filter(pk=diff.snapshot_id).update(duration_ms=duration_ms)
        _mark_fresh(segment_id=segment.pk, size=diff.size, now=now)
        snapshot = SegmentSnapshot.objects.get(pk=diff.snapshot_id)
        _restore_settings(previous_settings)
    if diff.entered or diff.exited:
        _notify_webhooks(segment_id=segment.pk)
    logger.info(
        "segment %s recomputed (%s): size %s, +%s -%s in %s ms",
        segment.pk, trigger, diff.size, diff.entered, diff.exited, duration_ms,
    )
    return snapshot


def recompute_contacts(
    *, segment_id: int, contact_ids: Iterable[int], trigger: str = Trigger.REAL_TIME, now: datetime | None = None
) -> SegmentSnapshot | None:
    """Re-evaluate only these contacts against the segment and apply their entries and exits.

    Returns the snapshot, or None when nothing changed (then nothing is written) or when the segment has
    no stored membership yet (a partial update of a never-computed segment would be meaningless; its
    full recompute is pending).
    """
    Trigger(trigger)
    ids = sorted(set(contact_ids))
    if not ids:
        return None
    started = time.monotonic()
    now = now or timezone.now()
    with _statement_timeout_as_error(), transaction.atomic():
        previous_settings = _tune_transaction()
        segment = _lock_segment(segment_id)
        if segment.computed_at is None or segment.size is None:
            _restore_settings(previous_settings)
            return None
        size = segment.size
        entered = exited = 0
        snapshot_id: int | None = None
        for start in range(0, len(ids), _CONTACT_CHUNK):
            chunk = ids[start : start + _CONTACT_CHUNK]
            target_sql, target_params = _compiled_ids_sql(segment, now=now, contact_ids=chunk)
            diff = _apply_diff(
                segment=segment, trigger=trigger, now=now, target_sql=target_sql, target_params=target_params,
                contact_ids=chunk, size_before=size, snapshot_id=snapshot_id,
            )
            size, snapshot_id = diff.size, diff.snapshot_id
            entered += diff.entered
            exited += diff.exited
        _restore_settings(previous_settings)
        if snapshot_id is None:
            return None
        SegmentSnapshot.objects.filter(pk=snapshot_id).update(
            size=size, entered=entered, exited=exited, duration_ms=_elapsed_ms(started)
        )
        Segment.objects.filter(pk=segment.pk).update(size=size)
        snapshot = SegmentSnapshot.objects.get(pk=snapshot_id)
    _notify_webhooks(segment_id=segment.pk)
    return snapshot


def record_failure(*, segment_id: int, error: BaseException | str, now: datetime | None = None) -> None:
    """Note a failed recompute on the segment (status, last error, failures in a row, next attempt)."""
    now = now or timezone.now()
    message = error if isinstance(error, str) else f"{error.__class__.__name__}: {error}"
    with transaction.atomic():
        segment = Segment.objects.select_for_update().filter(pk=segment_id).first()
        if segment is None:
            return
        error_count = segment.error_count + 1
        Segment.objects.filter(pk=segment_id).update(
            status=Segment.Status.FAILED,
            computing_since=None,
            last_error=message[:2000],
            error_count=error_count,
            next_attempt_at=now + failure_backoff(error_count),
        )
    logger.warning("segment %s recompute failed (%s in a row): %s", segment_id, error_count, message)


def failure_backoff(error_count: int) -> timedelta:
    """Wait 1, 2, 4, ... minutes after failures in a row, at most SEGMENT_RETRY_MAX_MINUTES."""
    minutes = min(2 ** max(error_count - 1, 0), settings.SEGMENT_RETRY_MAX_MINUTES)
    return timedelta(minutes=minutes)


def is_due(segment: Segment, *, now: datetime) -> bool:
    """Whether the segment's refresh interval will have elapsed by the dispatcher's next tick.

    One tick early, so that two evaluations of a segment are at most `refresh_minutes` apart (plus the
    time its task waits in the queue), not `refresh_minutes` plus a tick. Never for on-demand segments.
    """
    if segment.refresh_minutes == 0:
        return False
    if segment.computed_at is None:
        return True
    tick = timedelta(seconds=settings.SEGMENT_DISPATCH_INTERVAL_S)
    return segment.computed_at + timedelta(minutes=segment.refresh_minutes) <= now + tick


def run_recompute(*, segment_id: int, trigger: str) -> SegmentSnapshot | None:
    """What the task runs: recompute, or record why it failed and re-raise.

    A scheduled run that finds the segment already fresh (another run finished it meanwhile, e.g. after
    a stuck segment was released and dispatched again) does nothing.
    """
    segment = Segment.objects.filter(pk=segment_id).only("status", "computed_at", "refresh_minutes").first()
    if segment is None:
        return None
    already_done = segment.status != Segment.Status.COMPUTING and not is_due(segment, now=timezone.now())
    if trigger == Trigger.SCHEDULE and already_done:
        return None
    try:
        return recompute_membership(segment_id=segment_id, trigger=trigger)
    except Exception as exc:
        record_failure(segment_id=segment_id, error=exc)
        raise


def prune_changes(*, now: datetime | None = None, batch_size: int = 10_000) -> int:
    """Delete change-log rows older than SEGMENT_CHANGE_RETENTION_DAYS, in batches; returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.SEGMENT_CHANGE_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = SegmentChange.objects.filter(at__lt=cutoff).order_by("pk").values("pk")[:batch_size]
        count, _ = SegmentChange.objects.filter(pk__in=list(ids.values_list("pk", flat=True))).delete()
        deleted += count
        if count < batch_size:
            return deleted


# --- erasure ----------------------------------------------------------------------------------------


def record_erasure_exits(*, contact_id: int, external_id: str, now: datetime | None = None) -> list[int]:
    """Before an erased contact is deleted: make it leave every segment it is in, as an exit the ESP sees.

    Call inside the erasure's transaction, after locking the contact's row (so no recompute can add it
    to a segment meanwhile) and before deleting it. For each segment the contact is a member of, in id
    order and under the segment's lock (so the change ids of one segment stay committed in cursor order,
    as for a recompute), this does what a real-time update does when a contact leaves:

    - removes the membership and writes one "exited" change at `now`, which the feed shows and the
      segment's webhooks deliver (queued after commit, like any other change);
    - lowers the segment's stored `size` by one and records a snapshot of it (entered 0, exited 1,
      trigger "real_time"): the same row a partial recompute writes when one contact leaves, so the size
      history and the stored size stay consistent and the next recompute finds nothing more to do.
      The erasure is not a new trigger kind: it is a change of the contact's data applied at once, which
      is what "real_time" means, and no reader of snapshots has to learn a new value.

    The exit row keeps nothing of the person but the external_id the ESP already has: it is written
    without a contact (the contact's cascade then deletes its earlier changes and leaves this one) and
    with `external_id` instead. Automations read no contact on it and so never act on the erased person.

    A segment the contact already left, whose last change for it is an "exited" row, keeps that row the
    same way (detached from the contact) instead of losing it to the cascade: a poller or webhook that
    had not reached it yet would otherwise never learn about that exit either. Other earlier rows are
    deleted with the contact.

    Returns the ids of the segments the contact left.
    """
    now = now or timezone.now()
    candidate_ids = sorted(
        SegmentMember.objects.filter(contact_id=contact_id).values_list("segment_id", flat=True).distinct()
    )
    left: list[int] = []
    for segment_id in candidate_ids:
        segment = _lock_segment(segment_id)
        # Again under the lock: a recompute that was running may have removed the contact meanwhile.
        removed, _ = SegmentMember.objects.filter(segment_id=segment_id, contact_id=contact_id).delete()
        if not removed:
            continue
        if segment.size is not None:
            size = max(segment.size - 1, 0)
        else:  # never computed (not reached by the recompute paths): count what is stored
            size = SegmentMember.objects.filter(segment_id=segment_id).count()
        snapshot = SegmentSnapshot.objects.create(
            segment_id=segment_id, computed_at=now, size=size, entered=0, exited=1, duration_ms=0,
            trigger=Trigger.REAL_TIME,
        )
        SegmentChange.objects.create(
            segment_id=segment_id, snapshot=snapshot, contact=None, external_id=external_id,
            change=SegmentChange.Kind.EXITED, at=now,
        )
        if segment.size is not None:
            Segment.objects.filter(pk=segment_id).update(size=size)
        _notify_webhooks(segment_id=segment_id)
        left.append(segment_id)
    _keep_last_exits(contact_id=contact_id, external_id=external_id, exclude_segment_ids=left)
    if left:
        logger.info("erased contact %s left segments %s", contact_id, left)
    return left


def _keep_last_exits(*, contact_id: int, external_id: str, exclude_segment_ids: Sequence[int]) -> None:
    """Detach the contact's last change of each other segment from it when that change is an exit."""
    last_ids = (
        SegmentChange.objects.filter(contact_id=contact_id)
        .exclude(segment_id__in=list(exclude_segment_ids))
        .values("segment_id")
        .annotate(last=Max("pk"))
        .values_list("last", flat=True)
        .order_by()
    )
    SegmentChange.objects.filter(pk__in=list(last_ids), change=SegmentChange.Kind.EXITED).update(
        contact=None, external_id=external_id
    )


# --- reads ------------------------------------------------------------------------------------------


def stored_members(*, segment: Segment) -> QuerySet[SegmentMember]:
    """The segment's stored members with their contact (external_id, email), unordered."""
    return SegmentMember.objects.filter(segment=segment).select_related("contact").only(
        "contact_id", "since", "contact__external_id", "contact__email"
    )


def change_feed(*, segment: Segment) -> QuerySet[SegmentChange]:
    """The segment's change log with each contact's external_id, unordered (the id is the feed's cursor).

    Read it as `contact_external_id`: an erased contact's rows have no contact, only the stored external_id.
    """
    return SegmentChange.objects.filter(segment=segment).select_related("contact").only(
        "id", "change", "at", "external_id", "contact__external_id"
    )


# --- internals --------------------------------------------------------------------------------------


def _lock_segment(segment_id: int) -> Segment:
    """Take the segment's recompute lock for this transaction, then read its current row.

    PostgreSQL: a transaction-scoped advisory lock, so recomputes of one segment queue up while
    readers and edits of the segment row are not blocked. SQLite serialises writers itself.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, segment_id & 0x7FFFFFFF])
    return Segment.objects.select_related("workspace").get(pk=segment_id)


def _compiled_ids_sql(
    segment: Segment, *, now: datetime, contact_ids: Sequence[int] | None = None
) -> tuple[str, tuple]:
    """SQL and params selecting the ids of the contacts that match the segment's definition at `now`
    (of these contacts only, when `contact_ids` are given)."""
    matching = segment_matching(segment, now=now)
    if contact_ids is not None:
        return contact_ids_sql(matching.rows.filter(pk__in=list(contact_ids)))
    return matching.sql()


def segment_matching(segment: Segment, *, now: datetime) -> Matching:
    """`selectors.matching_ids` for a stored segment (what a recompute counts and diffs), with the workspace's
    field catalog cached.

    Building the catalog reads the custom attribute keys of every contact of the workspace (seconds on
    a million contacts), and a recompute, a real-time update and a dispatcher cycle evaluate many
    definitions of one workspace, so the catalog is kept per process for SEGMENT_CATALOG_CACHE_S.
    A definition the cached catalog refuses (e.g. it names an attribute that appeared since) is
    parsed again with a fresh catalog before it counts as broken.
    """
    group, catalog, resolver = _parsed(segment)
    return matching_ids(workspace=segment.workspace, group=group, catalog=catalog, segments=resolver, now=now)


def _parsed(segment: Segment) -> tuple[Group, Catalog, WorkspaceSegments]:
    resolver = WorkspaceSegments(segment.workspace_id)
    try:
        catalog = workspace_catalog(segment.workspace)
        group = parse_definition(segment.definition, catalog=catalog, segments=resolver, segment_id=segment.pk)
    except DefinitionError:
        resolver = WorkspaceSegments(segment.workspace_id)
        catalog = workspace_catalog(segment.workspace, fresh=True)
        group = parse_definition(segment.definition, catalog=catalog, segments=resolver, segment_id=segment.pk)
    return group, catalog, resolver


_catalogs: dict[tuple, tuple[float, Catalog]] = {}


def workspace_catalog(workspace: Workspace, *, fresh: bool = False) -> Catalog:
    """The workspace's catalog, built at most every SEGMENT_CATALOG_CACHE_S seconds in this process.

    Keyed by the workspace's id, creation time and declared attribute types, so a changed declaration
    (or a new workspace reusing an id, as in SQLite test databases) never sees another's catalog.
    """
    key = (workspace.pk, workspace.created_at, json.dumps(workspace.attribute_types or {}, sort_keys=True))
    cached = _catalogs.get(key)
    if not fresh and cached is not None and time.monotonic() - cached[0] < settings.SEGMENT_CATALOG_CACHE_S:
        return cached[1]
    catalog = build_catalog(workspace)
    _catalogs[key] = (time.monotonic(), catalog)
    return catalog


def _apply_diff(
    *,
    segment: Segment,
    trigger: str,
    now: datetime,
    target_sql: str,
    target_params: tuple,
    contact_ids: Sequence[int] | None,
    size_before: int | None,
    snapshot_id: int | None = None,
) -> _Diff:
    apply = _apply_diff_postgresql if connection.vendor == "postgresql" else _apply_diff_portable
    diff = apply(
        segment_id=segment.pk, trigger=trigger, now=now, target_sql=target_sql, target_params=target_params,
        contact_ids=contact_ids, size_before=size_before, snapshot_id=snapshot_id,
    )
    changed = diff.entered + diff.exited
    note_rows_written({SegmentMember: changed, SegmentChange: changed})
    return diff


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "member": quote(SegmentMember._meta.db_table),
        "change": quote(SegmentChange._meta.db_table),
        "snapshot": quote(SegmentSnapshot._meta.db_table),
    }


def _in_list(ids: Sequence[int]) -> str:
    return ", ".join(["%s"] * len(ids))


def _apply_diff_postgresql(
    *,
    segment_id: int,
    trigger: str,
    now: datetime,
    target_sql: str,
    target_params: tuple,
    contact_ids: Sequence[int] | None,
    size_before: int | None,
    snapshot_id: int | None,
) -> _Diff:
    """One statement: evaluate the definition once, diff against the stored members, write everything.

    The sub-statements of a WITH run on one snapshot, so `entered` and `exited` are both taken against
    the members as they were before this statement. A full recompute always writes its snapshot; a
    partial one only when someone entered or left (an event that changes nothing leaves no trace).
    """
    t = _tables()
    partial = contact_ids is not None
    scope_sql = f"AND m.contact_id IN ({_in_list(contact_ids)})" if partial else ""
    scope_params = list(contact_ids) if partial else []
    if snapshot_id is not None:
        snapshot_cte = "snap AS (SELECT %s::bigint AS id)"
        snapshot_params: list = [snapshot_id]
    else:
        # size: a full recompute counts the result; a partial one adjusts the stored size.
        size_expr = "(SELECT count(*) FROM target)" if not partial else (
            "%s + (SELECT count(*) FROM entered) - (SELECT count(*) FROM exited)"
        )
        snapshot_cte = f"""snap AS (
            INSERT INTO {t["snapshot"]} (segment_id, computed_at, size, entered, exited, duration_ms, trigger)
            SELECT %s, %s, {size_expr}, (SELECT count(*) FROM entered), (SELECT count(*) FROM exited), 0, %s
            {"WHERE EXISTS (SELECT 1 FROM entered) OR EXISTS (SELECT 1 FROM exited)" if partial else ""}
            RETURNING id
        )"""
        snapshot_params = [segment_id, now, *([size_before] if partial else []), trigger]
    # One FULL JOIN of the result with the stored members finds both sides of the difference in a
    # single pass (two anti-joins would hash the hundreds of thousands of members twice).
    sql = f"""
        WITH target (id) AS MATERIALIZED ({target_sql}),
        stored AS (SELECT m.contact_id FROM {t["member"]} m WHERE m.segment_id = %s {scope_sql}),
        diff AS MATERIALIZED (
            SELECT t.id AS entered_id, s.contact_id AS exited_id
            FROM target t FULL JOIN stored s ON s.contact_id = t.id
            WHERE t.id IS NULL OR s.contact_id IS NULL
        ),
        entered AS (SELECT entered_id AS id FROM diff WHERE exited_id IS NULL),
        exited AS (
            DELETE FROM {t["member"]} m
            WHERE m.segment_id = %s AND m.contact_id IN (SELECT exited_id FROM diff WHERE entered_id IS NULL)
            RETURNING m.contact_id
        ),
        added AS (
            INSERT INTO {t["member"]} (segment_id, contact_id, since)
            SELECT %s, e.id, %s FROM entered e
        ),
        {snapshot_cte},
        logged AS (
            -- In contact order within each kind, so that the log (and the feed) reads the same every time.
            INSERT INTO {t["change"]} (segment_id, snapshot_id, contact_id, change, at)
            SELECT * FROM (SELECT %s, (SELECT id FROM snap), e.id, 'entered', %s FROM entered e ORDER BY e.id) a
            UNION ALL
            SELECT * FROM (
                SELECT %s, (SELECT id FROM snap), x.contact_id, 'exited', %s FROM exited x ORDER BY x.contact_id
            ) b
        )
        SELECT (SELECT count(*) FROM target), (SELECT count(*) FROM entered), (SELECT count(*) FROM exited),
               (SELECT id FROM snap)
    """
    params = [
        *target_params,
        segment_id, *scope_params,
        segment_id,
        segment_id, now,
        *snapshot_params,
        segment_id, now,
        segment_id, now,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        matched, entered, exited, new_snapshot_id = cursor.fetchone()
    size = matched if not partial else size_before + entered - exited
    return _Diff(size=size, entered=entered, exited=exited, snapshot_id=new_snapshot_id or snapshot_id)


def _apply_diff_portable(
    *,
    segment_id: int,
    trigger: str,
    now: datetime,
    target_sql: str,
    target_params: tuple,
    contact_ids: Sequence[int] | None,
    size_before: int | None,
    snapshot_id: int | None,
) -> _Diff:
    """The same diff as a few statements over a temporary table of the result (SQLite and others)."""
    t = _tables()
    partial = contact_ids is not None
    scope_sql = f"AND m.contact_id IN ({_in_list(contact_ids)})" if partial else ""
    scope_params = list(contact_ids) if partial else []
    db_now = connection.ops.adapt_datetimefield_value(now)
    not_member = f"NOT EXISTS (SELECT 1 FROM {t['member']} m WHERE m.segment_id = %s AND m.contact_id = r.id)"
    gone = "NOT EXISTS (SELECT 1 FROM segment_result r WHERE r.id = m.contact_id)"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS segment_result (id INTEGER PRIMARY KEY)")
        cursor.execute("DELETE FROM segment_result")
        cursor.execute(f"INSERT INTO segment_result (id) {target_sql}", target_params)
        cursor.execute(f"SELECT count(*) FROM segment_result r WHERE {not_member}", [segment_id])
        entered = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT count(*) FROM {t['member']} m WHERE m.segment_id = %s {scope_sql} AND {gone}",
            [segment_id, *scope_params],
        )
        exited = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM segment_result")
        matched = cursor.fetchone()[0]
        size = matched if not partial else size_before + entered - exited
        if snapshot_id is None and (not partial or entered or exited):
            snapshot_id = SegmentSnapshot.objects.create(
                segment_id=segment_id, computed_at=now, size=size, entered=entered, exited=exited,
                duration_ms=0, trigger=trigger,
            ).pk
        if entered or exited:
            cursor.execute(
                f"INSERT INTO {t['change']} (segment_id, snapshot_id, contact_id, change, at) "
                f"SELECT %s, %s, r.id, 'entered', %s FROM segment_result r WHERE {not_member} ORDER BY r.id",
                [segment_id, snapshot_id, db_now, segment_id],
            )
            cursor.execute(
                f"INSERT INTO {t['change']} (segment_id, snapshot_id, contact_id, change, at) "
                f"SELECT %s, %s, m.contact_id, 'exited', %s FROM {t['member']} m "
                f"WHERE m.segment_id = %s {scope_sql} AND {gone} ORDER BY m.contact_id",
                [segment_id, snapshot_id, db_now, segment_id, *scope_params],
            )
            cursor.execute(
                f"DELETE FROM {t['member']} WHERE id IN (SELECT m.id FROM {t['member']} m "
                f"WHERE m.segment_id = %s {scope_sql} AND {gone})",
                [segment_id, *scope_params],
            )
            cursor.execute(
                f"INSERT INTO {t['member']} (segment_id, contact_id, since) "
                f"SELECT %s, r.id, %s FROM segment_result r WHERE {not_member}",
                [segment_id, db_now, segment_id],
            )
        cursor.execute("DELETE FROM segment_result")
    return _Diff(size=size, entered=entered, exited=exited, snapshot_id=snapshot_id)


def _mark_fresh(*, segment_id: int, size: int, now: datetime) -> None:
    Segment.objects.filter(pk=segment_id).update(
        size=size,
        computed_at=now,
        status=Segment.Status.FRESH,
        computing_since=None,
        last_error="",
        error_count=0,
        next_attempt_at=None,
    )


def _elapsed_ms(started: float) -> int:
    return int(round((time.monotonic() - started) * 1000))


class _statement_timeout_as_error:
    """Report a statement cancelled by the recompute's statement timeout as RecomputeTimeout.

    A query that outgrew the timeout will do so again, so it must not look like the transient
    OperationalError the task retries at once.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, OperationalError) and getattr(exc.__cause__, "sqlstate", None) == _QUERY_CANCELED:
            raise RecomputeTimeout(
                f"recompute took longer than SEGMENT_RECOMPUTE_TIMEOUT_S={settings.SEGMENT_RECOMPUTE_TIMEOUT_S}s"
            ) from exc
        return False


def _tune_transaction() -> str | None:
    """Inside the recompute transaction: limit each statement to SEGMENT_RECOMPUTE_TIMEOUT_S and give it
    SEGMENT_RECOMPUTE_WORK_MEM (PostgreSQL).

    Returns the previous value for `_restore_settings`; SET LOCAL semantics (is_local) undo it
    with the transaction or savepoint anyway, the restore only matters inside a caller's transaction.
    """
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        # work_mem too: the diff hashes the result and the stored members (hundreds of thousands of
        # ids); with the default 4MB those joins spill to disk in batches.
        cursor.execute(
            "SELECT current_setting('statement_timeout') || '|' || current_setting('work_mem'),"
            " set_config('statement_timeout', %s, true), set_config('work_mem', %s, true)",
            [f"{_timeout_ms()}ms", settings.SEGMENT_RECOMPUTE_WORK_MEM],
        )
        return cursor.fetchone()[0]


def _restore_settings(previous: str | None) -> None:
    if previous is not None:
        timeout, work_mem = previous.split("|")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true), set_config('work_mem', %s, true)",
                [timeout, work_mem],
            )


def _timeout_ms() -> int:
    return settings.SEGMENT_RECOMPUTE_TIMEOUT_S * 1000


def _notify_webhooks(*, segment_id: int) -> None:
    from segments_app.webhooks import schedule_webhook_delivery

    schedule_webhook_delivery(segment_id=segment_id)
