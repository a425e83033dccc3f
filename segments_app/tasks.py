"""Celery tasks of living segments. Thin: ids in, one service call, failures recorded by the service.

Every task acknowledges late (a worker killed midway leaves the message to be delivered again; the
services are safe to run twice), retries transient database errors with backoff, and has time limits.
Beat runs `dispatch_segments_task` and `deliver_webhooks_task` every minute and `prune_changes_task`
daily (CELERY_BEAT_SCHEDULE in config/settings.py).
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from segments_app import dispatch, membership, realtime, webhooks

_COMMON = {"acks_late": True, "autoretry_for": (OperationalError,), "retry_backoff": True, "retry_jitter": True}


@shared_task(
    **_COMMON,
    max_retries=5,
    soft_time_limit=settings.SEGMENT_RECOMPUTE_TIMEOUT_S + 30,
    time_limit=settings.SEGMENT_RECOMPUTE_TIMEOUT_S + 60,
)
def recompute_segment_task(segment_id: int, trigger: str = "schedule") -> None:
    """Recompute one segment's stored membership (trigger: schedule, manual, definition_change, campaign)."""
    membership.run_recompute(segment_id=segment_id, trigger=trigger)


@shared_task(**_COMMON, max_retries=5, soft_time_limit=50, time_limit=60)
def dispatch_segments_task() -> None:
    """Beat, every minute: release stuck segments, enqueue the due ones, pick up lost real-time work."""
    dispatch.dispatch_due_segments()
    realtime.enqueue_pending_workspaces()


@shared_task(**_COMMON, max_retries=10, soft_time_limit=120, time_limit=150)
def realtime_task(workspace_id: int) -> None:
    """Re-evaluate the queued changed contacts of a workspace against the segments that use their data."""
    realtime.process_workspace_queue(workspace_id=workspace_id)


@shared_task(**_COMMON, max_retries=5, soft_time_limit=3600, time_limit=3660)
def prune_changes_task() -> None:
    """Beat, daily: drop change-log rows older than SEGMENT_CHANGE_RETENTION_DAYS."""
    membership.prune_changes()


@shared_task(bind=True, **_COMMON, max_retries=None, soft_time_limit=300, time_limit=330)
def deliver_segment_webhooks_task(self, endpoint_id: int, segment_id: int) -> None:
    """POST the segment's pending changes to one endpoint; on failure try again after a growing delay."""
    outcome = webhooks.deliver_pending(endpoint_id=endpoint_id, segment_id=segment_id)
    if outcome.retry_in is not None and not self.request.is_eager and self.request.retries < webhooks.MAX_TASK_RETRIES:
        # Past MAX_TASK_RETRIES the minute sweep (deliver_webhooks_task) keeps trying on the same backoff.
        raise self.retry(countdown=outcome.retry_in.total_seconds(), max_retries=webhooks.MAX_TASK_RETRIES)


@shared_task(**_COMMON, max_retries=5, soft_time_limit=50, time_limit=60)
def deliver_webhooks_task() -> None:
    """Beat, every minute: enqueue delivery for every endpoint and segment with changes due to be sent."""
    webhooks.enqueue_due_deliveries()
