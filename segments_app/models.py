"""Segments, their stored membership and its history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from contacts.models import Contact, Workspace


class Segment(models.Model):
    class Status(models.TextChoices):
        NEW = "new"
        FRESH = "fresh"
        COMPUTING = "computing"
        FAILED = "failed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    definition = models.JSONField()
    refresh_minutes = models.PositiveIntegerField(default=60)
    size = models.PositiveIntegerField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    computing_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    error_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "name"]), models.Index(fields=["status", "computed_at"])]

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="segment_memberships")
    since = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "contact"], name="uniq_segment_member")]
        indexes = [models.Index(fields=["contact", "segment"])]

    def __str__(self) -> str:
        return f"contact {self.contact_id} in segment {self.segment_id}"


class SegmentSnapshot(models.Model):
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        REAL_TIME = "real_time"
        MANUAL = "manual"
        DEFINITION_CHANGE = "definition_change"
        CAMPAIGN = "campaign"

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="snapshots")
    computed_at = models.DateTimeField(default=timezone.now)
    size = models.PositiveIntegerField()
    entered = models.PositiveIntegerField()
    exited = models.PositiveIntegerField()
    duration_ms = models.PositiveIntegerField()
    trigger = models.CharField(max_length=20, choices=Trigger.choices)

    class Meta:
        indexes = [models.Index(fields=["segment", "-computed_at"])]

    def __str__(self) -> str:
        return f"segment {self.segment_id} at {self.computed_at:%Y-%m-%d %H:%M}: {self.size}"


class SegmentChange(models.Model):
    """One contact entering or leaving a segment; the id is the feed's cursor."""

    class Kind(models.TextChoices):
        ENTERED = "entered"
        EXITED = "exited"

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="changes")
    snapshot = models.ForeignKey(SegmentSnapshot, on_delete=models.CASCADE, related_name="changes")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="segment_changes")
    change = models.CharField(max_length=7, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["segment", "id"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"contact {self.contact_id} {self.change} segment {self.segment_id}"
