"""Campaigns (one mass send to target segments) and automations (a message when someone enters or leaves).

A campaign's audience is frozen at send time as `CampaignRecipient` rows; an automation's messages are
`AutomationSend` rows, one per segment change it acted on. Both kinds of row go through the same delivery
state machine (`Outbound`): pending -> sending (claimed: `sent_at` set by a conditional UPDATE) -> sent or
failed; a transient failure puts the row back to pending with `next_attempt_at`.

Foreign keys to Segment are plain (non-hidden) relations, so a segment used by a campaign or an
automation is visible as such from the segment; RESTRICT keeps a campaign's audience definition from
changing under it, while a whole workspace can still be deleted.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from contacts.models import Contact, Workspace
from segments_app.models import Segment


class Channel(models.TextChoices):
    EMAIL = "email"
    WEBHOOK = "webhook"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    # Campaign recipients in the holdout: frozen with the audience, never sent.
    CONTROL = "control"
    # Automation sends not made (the contact cannot receive); the reason is in last_error.
    SKIPPED = "skipped"


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        SCHEDULED = "scheduled"
        QUEUED = "queued"  # send requested; the task freezes the audience
        SENDING = "sending"  # audience frozen, delivery running
        SENT = "sent"  # every recipient sent or failed
        FAILED = "failed"  # could not prepare (e.g. a segment no longer compiles); may be sent again

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    subject = models.CharField(max_length=500, blank=True, default="")
    body = models.TextField(blank=True, default="", help_text="HTML body; merge fields are escaped.")
    body_text = models.TextField(blank=True, default="", help_text="Plain-text body; empty: derived from the HTML.")
    from_email = models.CharField(max_length=254, blank=True, default="")
    webhook_url = models.URLField(max_length=2000, blank=True, default="")
    webhook_secret = models.CharField(max_length=200, blank=True, default="")
    segments = models.ManyToManyField(Segment, through="CampaignTarget", related_name="campaigns")
    exclude_segments = models.ManyToManyField(
        Segment, through="CampaignExclusion", related_name="excluded_from_campaigns"
    )
    holdout_percent = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0"))
    scheduled_at = models.DateTimeField(null=True, blank=True)
    # Orders placed from the send up to this many days later are conversions (reports).
    conversion_window_days = models.PositiveSmallIntegerField(default=7)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When the audience was frozen.")
    finished_at = models.DateTimeField(null=True, blank=True)
    # Last time a delivery run worked on the campaign: the dispatcher restarts delivery when it goes quiet.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Counts taken when the audience was frozen: targeted, excluded, unsubscribed, bounced, complained,
    # no_email, recipients, control.
    audience = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "-created_at"]), models.Index(fields=["status", "scheduled_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def tracking_key(self) -> str:
        """The value of `Event.campaign` that ties an open, click, bounce, ... to this campaign."""
        return tracking_key(self.pk)

    @property
    def editable(self) -> bool:
        return self.status in {self.Status.DRAFT, self.Status.SCHEDULED}


def tracking_key(campaign_id: int) -> str:
    return f"campaign-{campaign_id}"


class CampaignTarget(models.Model):
    """A target segment of a campaign, its priority (1 wins over 2) and its optional content variant."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="targets")
    segment = models.ForeignKey(Segment, on_delete=models.RESTRICT, related_name="campaign_targets")
    priority = models.PositiveIntegerField(default=1)
    # Empty: the campaign's own subject / body.
    subject = models.CharField(max_length=500, blank=True, default="")
    body = models.TextField(blank=True, default="")
    body_text = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "segment"], name="uniq_campaign_target")]
        ordering = ["priority", "segment_id"]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} -> segment {self.segment_id} (priority {self.priority})"

    @property
    def has_variant(self) -> bool:
        return bool(self.subject or self.body or self.body_text)


class CampaignExclusion(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="exclusions")
    segment = models.ForeignKey(Segment, on_delete=models.RESTRICT, related_name="campaign_exclusions")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "segment"], name="uniq_campaign_exclusion")]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} excludes segment {self.segment_id}"


class Outbound(models.Model):
    """One message to one contact and where its delivery stands."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    # Claimed at: set (only where still NULL) right before the message is handed over, so a message is
    # never handed over twice; cleared again only when the hand-over surely failed.
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        abstract = True


class CampaignRecipient(Outbound):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    # The target segment whose variant the contact gets (its highest-priority target segment).
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaign_recipients"
    )
    is_control = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "contact"], name="uniq_campaign_recipient")]
        indexes = [models.Index(fields=["campaign", "status"]), models.Index(fields=["campaign", "segment"])]

    def __str__(self) -> str:
        return f"contact {self.contact_id} of campaign {self.campaign_id}: {self.status}"


class Automation(models.Model):
    class Trigger(models.TextChoices):
        ENTERED = "entered"
        EXITED = "exited"

    class Action(models.TextChoices):
        CAMPAIGN = "campaign"  # send the campaign's message (its channel and content)
        WEBHOOK = "webhook"  # POST the contacts to a URL

    class Frequency(models.TextChoices):
        ONCE = "once"  # at most once per contact, ever
        COOLDOWN = "cooldown"  # again only after cooldown_hours since the last time

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="automations")
    name = models.CharField(max_length=200)
    segment = models.ForeignKey(Segment, on_delete=models.RESTRICT, related_name="automations")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.ENTERED)
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.CAMPAIGN)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.RESTRICT, related_name="automations")
    webhook_url = models.URLField(max_length=2000, blank=True, default="")
    webhook_secret = models.CharField(max_length=200, blank=True, default="")
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.ONCE)
    cooldown_hours = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    # The change-log cursor: changes of the segment up to this id have been acted on (or predate the
    # automation). One segment's changes commit in id order, so nothing behind the cursor appears later.
    last_change_id = models.BigIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name

    @property
    def tracking_key(self) -> str:
        return f"automation-{self.pk}"


class AutomationSend(Outbound):
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="sends")
    # The SegmentChange acted on (not a foreign key: the change log is pruned, this history is not).
    change_id = models.BigIntegerField()
    triggered_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["automation", "change_id"], name="uniq_automation_change")]
        indexes = [
            models.Index(fields=["automation", "status"]),
            models.Index(fields=["automation", "contact", "triggered_at"]),
        ]

    def __str__(self) -> str:
        return f"automation {self.automation_id} for contact {self.contact_id}: {self.status}"
