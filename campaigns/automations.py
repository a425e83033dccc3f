"""Automations: when a contact enters (or leaves) a segment, send a campaign's message or call a webhook.

Driven by the segment's change log (`SegmentChange`, written by every recompute, real-time ones
included) through a cursor per automation (`Automation.last_change_id`):

1. under the automation's row lock, read the next changes of its segment after the cursor (in id order;
   one segment's changes commit in id order, because its recomputes hold the segment's lock, so nothing
   can appear behind the cursor later);
2. decide for each change of the automation's kind whether it fires: frequency "once" fires for a
   contact that never had a send of this automation; "cooldown" fires when the contact's previous send
   was triggered at least `cooldown_hours` before this change (times of the changes, not of the
   processing, so a rerun decides the same);
3. insert one `AutomationSend` per firing change (unique per automation and change: a rerun inserts
   nothing twice) and move the cursor past every change read, in the same transaction;
4. deliver the pending sends (campaigns.delivery: claimed before sending, retried, never twice).

A worker that dies after 3 left the sends pending: the next run delivers them; one that dies before 3
committed nothing: the next run reads the same changes again. A new automation starts after the changes
that exist when it is created (it does not replay history). Contacts that cannot receive (unsubscribed,
bounced, complained; no email address for email) get a "skipped" send with the reason, which does not
count as a send for "once" or the cool-down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from campaigns import delivery
from campaigns.models import Automation, AutomationSend, Campaign, Channel, DeliveryStatus
from campaigns.services import CampaignInvalid, readiness_errors
from contacts.models import Contact, Workspace
from segments_app.models import Segment, SegmentChange
from segments_app.webhooks import new_secret

logger = logging.getLogger(__name__)

CHANGES_PER_ROUND = 1000
MAX_ROUNDS_PER_RUN = 20
FIELDS = ("name", "trigger", "action", "webhook_url", "webhook_secret", "frequency", "cooldown_hours", "active")
COUNTED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.SENT, DeliveryStatus.FAILED)


@dataclass(frozen=True)
class ProcessOutcome:
    changes_read: int = 0
    fired: int = 0
    skipped: int = 0
    more: bool = False


# --- create and edit --------------------------------------------------------------------------------


@transaction.atomic
def create_automation(*, workspace: Workspace, data: dict[str, Any]) -> Automation:
    """`{"name", "segment", "trigger": "entered"|"exited", "action": "campaign"|"webhook", "campaign",
    "webhook_url", "frequency": "once"|"cooldown", "cooldown_hours", "active"}`; CampaignInvalid otherwise."""
    data = {
        "trigger": Automation.Trigger.ENTERED,
        "action": Automation.Action.CAMPAIGN,
        "frequency": Automation.Frequency.ONCE,
        **data,
    }
    segment, campaign = _check(workspace=workspace, data=data, automation=None)
    automation = Automation(workspace=workspace, segment=segment, campaign=campaign)
    _apply(automation, data)
    # Start after the changes that exist now: an automation acts on what happens from now on.
    automation.last_change_id = SegmentChange.objects.filter(segment=segment).aggregate(m=Max("pk"))["m"] or 0
    automation.save()
    return automation


@transaction.atomic
def update_automation(*, automation: Automation, data: dict[str, Any]) -> Automation:
    locked = Automation.objects.select_for_update().get(pk=automation.pk)
    segment, campaign = _check(workspace=locked.workspace, data=data, automation=locked)
    if segment.pk != locked.segment_id:
        locked.segment = segment
        locked.last_change_id = SegmentChange.objects.filter(segment=segment).aggregate(m=Max("pk"))["m"] or 0
    locked.campaign = campaign
    _apply(locked, data)
    locked.save()
    return locked


def _apply(automation: Automation, data: dict[str, Any]) -> None:
    for name in FIELDS:
        if name in data and data[name] is not None:
            setattr(automation, name, data[name])
    if automation.action == Automation.Action.WEBHOOK and not automation.webhook_secret:
        automation.webhook_secret = new_secret()


def _check(
    *, workspace: Workspace, data: dict[str, Any], automation: Automation | None
) -> tuple[Segment, Campaign | None]:
    errors: list[dict[str, str]] = []
    segment_id = data.get("segment", automation.segment_id if automation else None)
    segment = Segment.objects.filter(workspace=workspace, pk=segment_id).first() if segment_id is not None else None
    if segment is None:
        message = "required" if segment_id is None else f"no segment {segment_id} in this workspace"
        errors.append({"path": "segment", "message": message})
    action = data.get("action", automation.action if automation else None)
    campaign_id = data.get("campaign", automation.campaign_id if automation else None)
    campaign = None
    if campaign_id is not None:
        campaign = Campaign.objects.filter(workspace=workspace, pk=campaign_id).first()
        if campaign is None:
            errors.append({"path": "campaign", "message": f"no campaign {campaign_id} in this workspace"})
    if action == Automation.Action.CAMPAIGN and campaign is None and campaign_id is None:
        errors.append({"path": "campaign", "message": "required when the action is campaign"})
    if action == Automation.Action.CAMPAIGN and campaign is not None:
        # Only the content matters here: the automation decides who receives it.
        content = [e for e in readiness_errors(campaign) if e["path"] != "segments"]
        errors += [
            {"path": "campaign", "message": f"campaign {campaign.pk}: {e['path']}: {e['message']}"} for e in content
        ]
    webhook_url = data.get("webhook_url", automation.webhook_url if automation else "")
    if action == Automation.Action.WEBHOOK and not webhook_url:
        errors.append({"path": "webhook_url", "message": "required when the action is webhook"})
    frequency = data.get("frequency", automation.frequency if automation else None)
    cooldown = data.get("cooldown_hours", automation.cooldown_hours if automation else 0)
    if frequency == Automation.Frequency.COOLDOWN and not cooldown:
        errors.append({"path": "cooldown_hours", "message": "a cool-down of at least 1 hour is required"})
    if errors:
        raise CampaignInvalid(errors)
    return segment, campaign


# --- processing -------------------------------------------------------------------------------------


def process_changes(*, automation_id: int) -> ProcessOutcome:
    """Act on the segment changes after the automation's cursor (bounded run); see the module docstring."""
    read = fired = skipped = 0
    for _ in range(MAX_ROUNDS_PER_RUN):
        round_read, round_fired, round_skipped = _process_round(automation_id)
        read += round_read
        fired += round_fired
        skipped += round_skipped
        if round_read < CHANGES_PER_ROUND:
            return ProcessOutcome(changes_read=read, fired=fired, skipped=skipped)
    return ProcessOutcome(changes_read=read, fired=fired, skipped=skipped, more=True)


def _process_round(automation_id: int) -> tuple[int, int, int]:
    with transaction.atomic():
        automation = (
            Automation.objects.select_for_update(of=("self",))
            .select_related("campaign")
            .filter(pk=automation_id, active=True)
            .first()
        )
        if automation is None:
            return 0, 0, 0
        changes = list(
            SegmentChange.objects.filter(segment_id=automation.segment_id, pk__gt=automation.last_change_id)
            .order_by("pk")
            .values_list("pk", "contact_id", "change", "at")[:CHANGES_PER_ROUND]
        )
        if not changes:
            Automation.objects.filter(pk=automation_id).update(last_run_at=timezone.now())
            return 0, 0, 0
        relevant = [c for c in changes if c[2] == automation.trigger]
        sends = _decide(automation, relevant)
        AutomationSend.objects.bulk_create(sends, ignore_conflicts=True)
        Automation.objects.filter(pk=automation_id).update(last_change_id=changes[-1][0], last_run_at=timezone.now())
    skipped = sum(1 for s in sends if s.status == DeliveryStatus.SKIPPED)
    return len(changes), len(sends) - skipped, skipped


def _decide(automation: Automation, changes: list[tuple[int, int, str, datetime]]) -> list[AutomationSend]:
    contact_ids = {contact_id for _, contact_id, _, _ in changes}
    last_fired: dict[int, datetime] = dict(
        AutomationSend.objects.filter(automation=automation, contact_id__in=contact_ids, status__in=COUNTED)
        .values("contact_id")
        .annotate(last=Max("triggered_at"))
        .values_list("contact_id", "last")
        .order_by()
    )
    contacts = Contact.objects.in_bulk(contact_ids)
    channel = _channel(automation)
    cooldown = timedelta(hours=automation.cooldown_hours)
    sends = []
    for change_id, contact_id, _, at in changes:
        previous = last_fired.get(contact_id)
        if previous is not None and (automation.frequency == Automation.Frequency.ONCE or at < previous + cooldown):
            continue
        contact = contacts.get(contact_id)
        if contact is None:  # erased since
            continue
        reason = delivery.undelivered_reason(contact, channel=channel)
        send = AutomationSend(automation=automation, contact_id=contact_id, change_id=change_id, triggered_at=at)
        if reason:
            send.status, send.last_error = DeliveryStatus.SKIPPED, f"cannot receive: {reason}"
        else:
            last_fired[contact_id] = at
        sends.append(send)
    return sends


def _channel(automation: Automation) -> str:
    if automation.action == Automation.Action.WEBHOOK:
        return Channel.WEBHOOK
    return automation.campaign.channel if automation.campaign else Channel.EMAIL


def run_automation(*, automation_id: int) -> tuple[ProcessOutcome, delivery.DeliveryOutcome]:
    """What the task runs: act on new changes, then deliver the pending sends."""
    processed = process_changes(automation_id=automation_id)
    delivered = delivery.deliver_automation(automation_id=automation_id)
    return processed, delivered


def due_automations(*, now: datetime | None = None) -> list[int]:
    """Active automations with changes after their cursor or sends due: what the dispatcher enqueues."""
    now = now or timezone.now()
    delivery.fail_stale_claims(AutomationSend, now=now)
    due = []
    for automation in Automation.objects.filter(active=True).only("pk", "segment_id", "last_change_id").order_by("pk"):
        has_changes = SegmentChange.objects.filter(segment_id=automation.segment_id, pk__gt=automation.last_change_id)
        next_send = delivery.next_due(AutomationSend, scope="automation_id", scope_id=automation.pk)
        if has_changes.exists() or (next_send is not None and next_send <= now):
            due.append(automation.pk)
    return due
