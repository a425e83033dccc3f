"""The dispatcher: which segments to recompute now. Beat runs it every minute (dispatch_segments_task).

A segment is due when its `refresh_minutes` have elapsed since `computed_at` (never computed: due at
once; `refresh_minutes = 0`: only on demand). Due segments are claimed oldest first with a conditional
UPDATE (`status = computing`, `computing_since = now` where the row is still not computing and not
recomputed meanwhile), so two dispatchers never enqueue the same segment twice; the task's recompute
sets it back to fresh (or failed). A segment that stays "computing" longer than
SEGMENT_STUCK_MINUTES (its worker died, its message was lost) is released as failed and becomes due
again.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from segments_app.membership import is_due, record_failure
from segments_app.models import Segment

logger = logging.getLogger(__name__)


@dataclass
class DispatchResult:
    released: list[int] = field(default_factory=list)
    enqueued: list[int] = field(default_factory=list)


def release_stuck_segments(*, now: datetime | None = None) -> list[int]:
    """Mark segments computing for longer than SEGMENT_STUCK_MINUTES as failed; returns their ids."""
    now = now or timezone.now()
    limit = timedelta(minutes=settings.SEGMENT_STUCK_MINUTES)
    stuck = list(
        Segment.objects.filter(status=Segment.Status.COMPUTING, computing_since__lt=now - limit)
        .order_by("pk")
        .values_list("pk", "computing_since")
    )
    released = []
    for segment_id, since in stuck:
        message = (
            f"released by the dispatcher: computing since {since:%Y-%m-%d %H:%M:%S} UTC, longer than "
            f"{settings.SEGMENT_STUCK_MINUTES} minutes (worker lost?)"
        )
        # Conditional: a recompute that finishes meanwhile wins.
        updated = Segment.objects.filter(pk=segment_id, status=Segment.Status.COMPUTING, computing_since=since).update(
            status=Segment.Status.FAILED,
            computing_since=None,
            last_error=message,
            error_count=F("error_count") + 1,
            next_attempt_at=now,
        )
        if updated:
            released.append(segment_id)
            logger.warning("segment %s: %s", segment_id, message)
    return released


def due_segments(*, now: datetime | None = None, segment_ids: Collection[int] | None = None) -> list[Segment]:
    """Segments whose refresh interval has elapsed and that may be tried now, oldest computation first.

    `segment_ids` restricts the choice (a benchmark sharing a database with other people's segments).
    """
    now = now or timezone.now()
    segments = Segment.objects.all() if segment_ids is None else Segment.objects.filter(pk__in=list(segment_ids))
    candidates = (
        segments.filter(refresh_minutes__gt=0)
        .exclude(status=Segment.Status.COMPUTING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .only("pk", "computed_at", "refresh_minutes", "status")
    )
    due = [segment for segment in candidates.iterator(chunk_size=2000) if is_due(segment, now=now)]
    # Never computed first, then the longest since computed; the id breaks ties deterministically.
    due.sort(key=lambda s: (s.computed_at is not None, s.computed_at or now, s.pk))
    return due


def claim_segment(segment: Segment, *, now: datetime) -> bool:
    """Mark the segment computing unless someone else did or it was recomputed since it was read."""
    unchanged = (
        Q(computed_at__isnull=True) if segment.computed_at is None else Q(computed_at=segment.computed_at)
    )
    claimed = (
        Segment.objects.filter(unchanged, pk=segment.pk)
        .exclude(status=Segment.Status.COMPUTING)
        .update(status=Segment.Status.COMPUTING, computing_since=now)
    )
    return claimed == 1


def dispatch_due_segments(
    *, now: datetime | None = None, segment_ids: Collection[int] | None = None
) -> DispatchResult:
    """Release stuck segments, then claim and enqueue every due one (trigger "schedule")."""
    now = now or timezone.now()
    result = DispatchResult(released=release_stuck_segments(now=now))
    for segment in due_segments(now=now, segment_ids=segment_ids):
        if claim_segment(segment, now=now):
            result.enqueued.append(segment.pk)
    for segment_id in result.enqueued:
        transaction.on_commit(lambda sid=segment_id: _enqueue(sid))
    if result.enqueued or result.released:
        logger.info("dispatcher: enqueued %s, released %s", result.enqueued, result.released)
    return result


def _enqueue(segment_id: int) -> None:
    from segments_app.tasks import recompute_segment_task

    try:
        recompute_segment_task.delay(segment_id, "schedule")
    except BrokerError as exc:  # broker down: say so on the segment instead of leaving it "computing"
        record_failure(segment_id=segment_id, error=f"could not enqueue the recompute: {exc}")
