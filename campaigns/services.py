"""Write side of campaigns: create and edit, schedule, send (recompute, freeze, deliver), dispatch.

Campaign states, each move a conditional UPDATE so that two requests or two workers never both make it:

    draft <-> scheduled --(due: dispatcher)--> queued --(task: recompute + freeze)--> sending --> sent
    draft / scheduled / failed --(send request)--> queued
    queued --(preparation failed: a segment no longer compiles)--> failed

`request_send` makes the queued move and enqueues the send task; a second request finds the campaign no
longer draft/scheduled/failed and does nothing. `prepare_send` (in the task) moves queued -> sending in
the same transaction that recomputes the target and exclusion segments (trigger "campaign") and inserts
the recipients with one INSERT ... SELECT, so a crash leaves the campaign queued with no recipients
and the next run starts over; a task delivered twice finds it sending and goes straight to delivery,
whose per-recipient claims keep anyone from getting the message twice (campaigns.delivery).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns import delivery
from campaigns.errors import CampaignInvalid, CampaignLocked
from campaigns.models import (
    Campaign,
    CampaignExclusion,
    CampaignRecipient,
    CampaignTarget,
    Channel,
    DeliveryStatus,
)
from campaigns.selectors import AudienceSpec, audience_counts, audience_sql
from campaigns.templating import template_errors
from contacts.models import Workspace
from contacts.planner_stats import note_rows_written
from segments_app.membership import recompute_membership
from segments_app.models import Segment, SegmentSnapshot
from segments_app.webhooks import new_secret

logger = logging.getLogger(__name__)

__all__ = ["CampaignInvalid", "CampaignLocked"]  # re-exported: callers catch them from here

SENDABLE = (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED, Campaign.Status.FAILED)
# A queued campaign not picked up for this long (its message was lost) is enqueued again.
QUEUED_STALE_AFTER = timedelta(minutes=2)
# A sending campaign whose delivery made no progress for this long gets a new delivery run.
SENDING_QUIET_AFTER = timedelta(minutes=2)
# scheduled_at may lie this far in the past (clock skew, a slow form) and still count as "now".
SCHEDULE_GRACE = timedelta(minutes=1)
TEMPLATE_FIELDS = (("subject", False), ("body", True), ("body_text", False))
CONTENT_FIELDS = (
    "name",
    "channel",
    "subject",
    "body",
    "body_text",
    "from_email",
    "webhook_url",
    "webhook_secret",
    "holdout_percent",
    "scheduled_at",
    "conversion_window_days",
)


# --- create and edit --------------------------------------------------------------------------------


@transaction.atomic
def create_campaign(*, workspace: Workspace, data: dict[str, Any], user=None) -> Campaign:
    """Create a campaign from parsed input (see `CampaignIn`); CampaignInvalid with located errors otherwise.

    >>> create_campaign(workspace=ws, data={"name": "Spring", "subject": "Hi {{ first_name }}",
    ...     "body": "<p>20% off</p>", "segments": [7, 3], "exclude_segments": [9], "holdout_percent": 10,
    ...     "variants": [{"segment": 3, "subject": "Welcome back"}]})

    Target priority follows the order of `segments` (first = 1) unless a variant names its own.
    """
    data = {"channel": Channel.EMAIL, **data}
    segments = _check(workspace=workspace, data=data, campaign=None)
    campaign = Campaign(workspace=workspace, created_by=user if getattr(user, "pk", None) else None)
    _apply_fields(campaign, data)
    campaign.save()
    _write_targets(campaign, data, segments)
    _check_ready_if_scheduled(campaign)
    return campaign


@transaction.atomic
def update_campaign(*, campaign: Campaign, data: dict[str, Any]) -> Campaign:
    """Change the given fields of a draft or scheduled campaign (CampaignLocked once it is being sent)."""
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not locked.editable:
        raise CampaignLocked(f"the campaign is {locked.status}: it can no longer be changed")
    segments = _check(workspace=locked.workspace, data=data, campaign=locked)
    _apply_fields(locked, data)
    locked.save()
    _write_targets(locked, data, segments)
    _check_ready_if_scheduled(locked)
    return locked


def _apply_fields(campaign: Campaign, data: dict[str, Any]) -> None:
    for name in CONTENT_FIELDS:
        if name in data:
            setattr(campaign, name, data[name] if data[name] is not None or name == "scheduled_at" else "")
    if campaign.channel == Channel.WEBHOOK and not campaign.webhook_secret:
        campaign.webhook_secret = new_secret()
    if "scheduled_at" in data:
        campaign.status = Campaign.Status.SCHEDULED if campaign.scheduled_at else Campaign.Status.DRAFT


def _check(*, workspace: Workspace, data: dict[str, Any], campaign: Campaign | None) -> dict[int, Segment]:
    """Every located error of the input at once (nothing is written when there is one)."""
    errors: list[dict[str, str]] = []
    wanted = [*data.get("segments", []), *data.get("exclude_segments", [])]
    wanted += [v["segment"] for v in data.get("variants", []) if isinstance(v.get("segment"), int)]
    found = {s.pk: s for s in Segment.objects.filter(workspace=workspace, pk__in=set(wanted))}
    for key in ("segments", "exclude_segments"):
        seen: set[int] = set()
        for index, segment_id in enumerate(data.get(key, [])):
            path = f"{key}[{index}]"
            if segment_id not in found:
                errors.append({"path": path, "message": f"no segment {segment_id} in this workspace"})
            elif segment_id in seen:
                errors.append({"path": path, "message": f"segment {segment_id} is listed twice"})
            seen.add(segment_id)
    targets = set(data["segments"]) if "segments" in data else set(_current_targets(campaign))
    for index, segment_id in enumerate(data.get("exclude_segments", [])):
        if segment_id in targets and segment_id in found:
            errors.append(
                {"path": f"exclude_segments[{index}]", "message": "a segment cannot be targeted and excluded"}
            )
    if "exclude_segments" not in data and "segments" in data and campaign is not None:
        for segment_id in campaign.exclusions.values_list("segment_id", flat=True):
            if segment_id in targets:
                errors.append({"path": "segments", "message": f"segment {segment_id} is excluded by this campaign"})
    for index, variant in enumerate(data.get("variants", [])):
        if variant["segment"] not in targets:
            message = f"segment {variant['segment']} is not a target segment of this campaign (list it in segments)"
            errors.append({"path": f"variants[{index}].segment", "message": message})
        for name, html_body in TEMPLATE_FIELDS:
            errors += _located(
                f"variants[{index}].{name}", template_errors(variant.get(name) or "", html_body=html_body)
            )
    for name, html_body in TEMPLATE_FIELDS:
        if data.get(name):
            errors += _located(name, template_errors(data[name], html_body=html_body))
    scheduled_at = data.get("scheduled_at")
    if scheduled_at is not None and scheduled_at < timezone.now() - SCHEDULE_GRACE:
        errors.append({"path": "scheduled_at", "message": "must not be in the past"})
    if errors:
        raise CampaignInvalid(errors)
    return found


def _located(path: str, messages: list[str]) -> list[dict[str, str]]:
    return [{"path": path, "message": message} for message in messages]


def _current_targets(campaign: Campaign | None) -> list[int]:
    return [] if campaign is None else list(campaign.targets.values_list("segment_id", flat=True))


def _write_targets(campaign: Campaign, data: dict[str, Any], segments: dict[int, Segment]) -> None:
    variants = {v["segment"]: v for v in data.get("variants", [])}
    if "segments" in data:
        previous = {t.segment_id: t for t in campaign.targets.all()}
        campaign.targets.all().delete()
        rows = []
        for position, segment_id in enumerate(data["segments"], start=1):
            old = previous.get(segment_id)
            row = CampaignTarget(
                campaign=campaign,
                segment_id=segment_id,
                priority=position,
                subject=old.subject if old else "",
                body=old.body if old else "",
                body_text=old.body_text if old else "",
            )
            _apply_variant(row, variants.get(segment_id))
            rows.append(row)
        CampaignTarget.objects.bulk_create(rows)
    elif variants:
        for target in campaign.targets.filter(segment_id__in=list(variants)):
            _apply_variant(target, variants[target.segment_id])
            target.save()
    if "exclude_segments" in data:
        campaign.exclusions.all().delete()
        CampaignExclusion.objects.bulk_create(
            [CampaignExclusion(campaign=campaign, segment_id=segment_id) for segment_id in data["exclude_segments"]]
        )


def _apply_variant(target: CampaignTarget, variant: dict | None) -> None:
    if not variant:
        return
    if variant.get("priority") is not None:
        target.priority = variant["priority"]
    for name in ("subject", "body", "body_text"):
        if name in variant:
            setattr(target, name, variant[name] or "")


def _check_ready_if_scheduled(campaign: Campaign) -> None:
    if campaign.status == Campaign.Status.SCHEDULED:
        errors = readiness_errors(campaign)
        if errors:
            raise CampaignInvalid(errors)


def readiness_errors(campaign: Campaign) -> list[dict[str, str]]:
    """What is missing before the campaign can be sent (or scheduled)."""
    errors: list[dict[str, str]] = []
    targets = list(campaign.targets.all())
    if not targets:
        errors.append({"path": "segments", "message": "choose at least one target segment"})
    if campaign.channel == Channel.WEBHOOK:
        if not campaign.webhook_url:
            errors.append({"path": "webhook_url", "message": "required to send through a webhook"})
        return errors
    # An email always has content: `delivery.own_content` falls back to the campaign's name.
    return errors


# --- sending ----------------------------------------------------------------------------------------


def request_send(*, campaign: Campaign) -> bool:
    """Ask for the campaign to be sent now; True when this call started it, False when it already was.

    CampaignInvalid when it is not ready (no target segment, no content).
    """
    current = Campaign.objects.get(pk=campaign.pk)
    if current.status not in SENDABLE:
        return False
    errors = readiness_errors(current)
    if errors:
        raise CampaignInvalid(errors)
    started = Campaign.objects.filter(pk=campaign.pk, status__in=SENDABLE).update(
        status=Campaign.Status.QUEUED, queued_at=timezone.now(), last_error="", last_error_at=None
    )
    if started:
        enqueue_send(campaign_id=campaign.pk)
    return bool(started)


def enqueue_send(*, campaign_id: int) -> None:
    """Run the send task: with a broker after the current commit (the worker must see the queued state);
    without one (quick start, tests) right here, on this connection, where it already does."""
    from campaigns.tasks import send_campaign_task

    _enqueue(lambda: send_campaign_task.delay(campaign_id))


def _enqueue(send: Callable[[], Any]) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        send()
    else:
        transaction.on_commit(send, robust=True)


def prepare_send(*, campaign_id: int, now: datetime | None = None) -> bool:
    """Queued -> sending: recompute the segments and freeze the audience, in one transaction.

    True when this call froze the audience; False when the campaign was not queued (already frozen by an
    earlier or concurrent run). A segment that fails to recompute marks the campaign failed.
    """
    now = now or timezone.now()
    campaign = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.QUEUED).first()
    if campaign is None:
        return False
    try:
        with transaction.atomic():
            claimed = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.QUEUED).update(
                status=Campaign.Status.SENDING, started_at=now, heartbeat_at=now
            )
            if not claimed:
                return False
            spec = AudienceSpec.of(campaign)
            # Sorted, so two campaigns sharing segments take the segments' locks in the same order.
            for segment_id in sorted({segment_id for segment_id, _ in spec.targets} | set(spec.exclusions)):
                _recompute(segment_id)
            counts = freeze_audience(spec, now=now)
            Campaign.objects.filter(pk=campaign_id).update(audience=counts)
    except OperationalError:
        raise  # transient: the task retries, the campaign is still queued
    except Exception as exc:  # noqa: BLE001 - recorded on the campaign, which can be sent again once fixed
        message = str(exc)[:2000]
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.QUEUED).update(
            status=Campaign.Status.FAILED, last_error=message, last_error_at=timezone.now()
        )
        logger.warning("campaign %s could not be prepared: %s", campaign_id, message)
        return False
    logger.info("campaign %s: audience frozen %s", campaign_id, counts)
    return True


def _recompute(segment_id: int) -> None:
    try:
        recompute_membership(segment_id=segment_id, trigger=SegmentSnapshot.Trigger.CAMPAIGN)
    except OperationalError:
        raise
    except Exception as exc:
        name = Segment.objects.filter(pk=segment_id).values_list("name", flat=True).first()
        raise RuntimeError(f"segment {segment_id} ({name}) could not be recomputed: {exc}") from exc


def freeze_audience(spec: AudienceSpec, *, now: datetime) -> dict[str, int]:
    """Insert the reachable audience as recipient rows (one INSERT ... SELECT); returns the counts."""
    counts = audience_counts(spec)
    sql, params = audience_sql(spec)
    table = connection.ops.quote_name(CampaignRecipient._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (campaign_id, contact_id, segment_id, is_control, status, attempts, last_error) "
            f"SELECT %s, a.contact_id, a.segment_id, a.is_control, "
            f"CASE WHEN a.is_control THEN %s ELSE %s END, 0, '' FROM ({sql}) a WHERE a.reason IS NULL",
            [spec.campaign_id, DeliveryStatus.CONTROL, DeliveryStatus.PENDING, *params],
        )
        note_rows_written({CampaignRecipient: cursor.rowcount})
    return counts.as_json()


def run_send(*, campaign_id: int) -> delivery.DeliveryOutcome:
    """What the send task runs: freeze the audience if still queued, then deliver a bounded run."""
    prepare_send(campaign_id=campaign_id)
    return delivery.deliver_campaign(campaign_id=campaign_id)


# --- the dispatcher (beat) --------------------------------------------------------------------------


def start_due_campaigns(*, now: datetime | None = None) -> list[int]:
    """Scheduled campaigns whose time has come: queued and enqueued (each by exactly one dispatcher)."""
    now = now or timezone.now()
    started = []
    due = Campaign.objects.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now).order_by("scheduled_at")
    for campaign_id in due.values_list("pk", flat=True):
        if Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SCHEDULED).update(
            status=Campaign.Status.QUEUED, queued_at=now
        ):
            started.append(campaign_id)
            enqueue_send(campaign_id=campaign_id)
    return started


def resume_stalled_campaigns(*, now: datetime | None = None) -> list[int]:
    """Queued campaigns whose task was lost, and sending ones whose delivery went quiet with work due."""
    now = now or timezone.now()
    delivery.fail_stale_claims(CampaignRecipient, now=now)
    resumed = []
    lost = Campaign.objects.filter(status=Campaign.Status.QUEUED, queued_at__lt=now - QUEUED_STALE_AFTER)
    for campaign_id in lost.values_list("pk", flat=True):
        if Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.QUEUED).update(queued_at=now):
            resumed.append(campaign_id)
    due_rows = CampaignRecipient.objects.filter(campaign=OuterRef("pk"), status=DeliveryStatus.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    busy_rows = CampaignRecipient.objects.filter(
        campaign=OuterRef("pk"), status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]
    )
    quiet = (
        Campaign.objects.filter(status=Campaign.Status.SENDING)
        .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - SENDING_QUIET_AFTER))
        .filter(Q(Exists(due_rows)) | ~Q(Exists(busy_rows)))
    )
    for campaign_id in quiet.values_list("pk", flat=True):
        if Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(heartbeat_at=now):
            resumed.append(campaign_id)
    for campaign_id in resumed:
        enqueue_send(campaign_id=campaign_id)
    return resumed
