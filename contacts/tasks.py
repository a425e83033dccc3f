"""Celery tasks for the computed contact figures. Thin: ids in, a service of contacts.stats out."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from contacts.ingest.segment import prune_processed_messages
from contacts.models import Workspace
from contacts.stats import refresh_scheduled_stats


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def refresh_workspace_stats_task(workspace_id: int) -> None:
    """Clock-dependent figures and RFM of one workspace; the outcome is recorded on the workspace."""
    if Workspace.objects.filter(pk=workspace_id).exists():
        refresh_scheduled_stats(workspace_id=workspace_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def refresh_all_workspaces_stats_task() -> None:
    """Run by Celery beat (CELERY_BEAT_SCHEDULE): one task per workspace, so one failure stays local."""
    for workspace_id in Workspace.objects.order_by("pk").values_list("pk", flat=True):
        refresh_workspace_stats_task.delay(workspace_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def prune_processed_messages_task() -> None:
    """Beat, daily: forget Segment message ids older than SEGMENT_MESSAGE_ID_RETENTION_DAYS."""
    prune_processed_messages()
