"""Celery tasks of campaigns and automations. Thin: ids in, one service call, failures recorded by the service.

All acknowledge late and are safe to run twice (or at the same time): state moves are conditional
UPDATEs and every message is claimed before it is handed over. A run hands over a bounded number of
batches and enqueues the next run itself; a failing channel is retried after the delay the delivery
asks for, and the dispatcher (beat, CAMPAIGN_DISPATCH_INTERVAL_S) picks up whatever a lost message or a
dead worker left behind.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from campaigns import automations, services

_COMMON = {"acks_late": True, "autoretry_for": (OperationalError,), "retry_backoff": True, "retry_jitter": True}


def _follow_up(task, task_id: int, *, more: bool, retry_in) -> None:  # noqa: ANN001 - a Celery task
    if more:
        task.delay(task_id)
    elif retry_in is not None and not task.app.conf.task_always_eager:
        # Eager (no broker) runs cannot wait: the dispatcher retries them on its next tick.
        task.apply_async((task_id,), countdown=retry_in.total_seconds())


@shared_task(**_COMMON, max_retries=5, soft_time_limit=1800, time_limit=1860)
def send_campaign_task(campaign_id: int) -> None:
    """Freeze the campaign's audience if it is still queued, then deliver a bounded run."""
    outcome = services.run_send(campaign_id=campaign_id)
    _follow_up(send_campaign_task, campaign_id, more=outcome.more, retry_in=outcome.retry_in)


@shared_task(**_COMMON, max_retries=5, soft_time_limit=600, time_limit=660)
def run_automation_task(automation_id: int) -> None:
    """Act on the automation's new segment changes and deliver its pending sends."""
    processed, delivered = automations.run_automation(automation_id=automation_id)
    _follow_up(run_automation_task, automation_id, more=processed.more or delivered.more, retry_in=delivered.retry_in)


@shared_task(**_COMMON, max_retries=3, soft_time_limit=50, time_limit=60)
def dispatch_campaigns_task() -> None:
    """Beat: start due scheduled campaigns, resume stalled ones, enqueue automations with work."""
    services.start_due_campaigns()
    services.resume_stalled_campaigns()
    for automation_id in automations.due_automations():
        run_automation_task.delay(automation_id)
