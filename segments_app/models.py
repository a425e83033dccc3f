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
    # Failures in a row; reset by the next successful recompute.
    error_count = models.PositiveIntegerField(default=0)
    # After a failure the dispatcher waits until then (backoff), so a broken segment is not retried every minute.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
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
    """One contact entering or leaving a segment; the id is the feed's cursor.

    The log is append-only and written in bulk (a first computation of a large segment adds hundreds of
    thousands of rows), so its references are not checked row by row by the database
    (`db_constraint=False`: PostgreSQL's per-row foreign-key checks cost more than the insert itself).
    They are still foreign keys for Django: deleting a contact, snapshot or segment deletes its changes,
    as before. The (segment, id) index serves the feed and the segment's cascade.

    Erasure (`membership.record_erasure_exits`) is the one exception: the "exited" rows that tell the
    feed, the webhooks and the automations that an erased contact left its segments are written with no
    `contact` (so the contact's cascade leaves them alone) and with the contact's `external_id` instead,
    the one thing about the person the ESP already has. Every other row has a `contact` and no
    `external_id`; readers take `contact_external_id`.
    """

    class Kind(models.TextChoices):
        ENTERED = "entered"
        EXITED = "exited"

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="changes", db_constraint=False, db_index=False
    )
    snapshot = models.ForeignKey(
        SegmentSnapshot, on_delete=models.CASCADE, related_name="changes", db_constraint=False
    )
    # Null only on the rows kept for an erased contact (see above).
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="segment_changes", db_constraint=False, null=True, blank=True
    )
    # Set only when `contact` is null: the erased contact's external_id.
    external_id = models.CharField(max_length=255, null=True, blank=True)
    change = models.CharField(max_length=7, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["segment", "id"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        who = f"contact {self.contact_id}" if self.contact_id is not None else f"erased contact {self.external_id}"
        return f"{who} {self.change} segment {self.segment_id}"

    @property
    def contact_external_id(self) -> str | None:
        """The contact's external_id: the contact's own, or the stored one of an erased contact.

        Load `contact__external_id` (select_related) with the row, or this reads the contact.
        """
        if self.contact_id is None:
            return self.external_id
        contact = self.contact
        return contact.external_id if contact is not None else self.external_id


class RealtimeQueueEntry(models.Model):
    """A contact whose data changed, waiting to be re-evaluated against the workspace's segments.

    Ingest adds rows after commit; the real-time task drains them in id order. `contact_id` is not a
    foreign key: the hot ingest path should not pay for the check, and a deleted contact simply
    evaluates to "not a member".
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    contact_id = models.BigIntegerField()
    # Bit set of the data kinds that changed (segments_app.realtime.KIND_BITS).
    kinds = models.PositiveSmallIntegerField()
    queued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["workspace", "id"])]

    def __str__(self) -> str:
        return f"contact {self.contact_id} of workspace {self.workspace_id}"


class RealtimeState(models.Model):
    """Whether a real-time task is already on its way for the workspace: bursts of ingest calls share one."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, primary_key=True, related_name="+")
    task_pending = models.BooleanField(default=False)
    enqueued_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"real-time state of workspace {self.workspace_id}"


class WebhookEndpoint(models.Model):
    """An ESP's URL that receives a segment's entries and exits, signed with `secret`."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    secret = models.CharField(max_length=200)
    # No segments selected: every segment of the workspace.
    segments = models.ManyToManyField(Segment, blank=True, related_name="webhook_endpoints")
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True, default="")
    # Changes up to this id existed before the endpoint was registered and are not sent.
    start_after_change_id = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.url


class WebhookCursor(models.Model):
    """How far an endpoint has received one segment's change log.

    One cursor per (endpoint, segment) rather than per endpoint: change ids of *one* segment are
    committed in id order (its recomputes hold the segment's lock), those of different segments are not.
    """

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="cursors")
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+")
    last_change_id = models.BigIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "segment"], name="uniq_webhook_cursor")]

    def __str__(self) -> str:
        return f"endpoint {self.endpoint_id} / segment {self.segment_id} at change {self.last_change_id}"


class WebhookDelivery(models.Model):
    """One batch of changes (ids first_change_id..last_change_id) for one endpoint, with its attempts."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    first_change_id = models.BigIntegerField()
    last_change_id = models.BigIntegerField()
    change_count = models.PositiveIntegerField()
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["endpoint", "segment", "status"]), models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"delivery {self.pk} of changes {self.first_change_id}..{self.last_change_id}: {self.status}"
