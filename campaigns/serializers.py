"""Input and output shapes of the campaigns API (also its OpenAPI description).

Input serializers only parse types and ranges; everything that needs the database (segments of the
workspace, templates, readiness) is checked by the services, so the pages and the API refuse the same
things with the same located errors. Unknown fields are refused, not ignored: a misspelt
`exclude_segment` silently ignored would mail the very people the marketer meant to leave out.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.models import Automation, AutomationSend, Campaign, CampaignRecipient, CampaignTarget, Channel
from campaigns.selectors import delivery_progress
from config.api_paging import HTTP_URL


def page_of(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The shape of a paginated list of `item`: {"results": [...], "next", "next_cursor"}."""
    fields = {
        "results": item(many=True),
        "next": serializers.URLField(allow_null=True),
        "next_cursor": serializers.CharField(allow_null=True),
    }
    return type(name, (serializers.Serializer,), fields)


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know, each with its own located error."""

    def to_internal_value(self, data):  # noqa: ANN001, ANN201 - DRF's signature
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: ["unknown field"] for key in unknown})
        return super().to_internal_value(data)


class VariantIn(StrictSerializer):
    segment = serializers.IntegerField(help_text="A target segment of the campaign (listed in `segments`).")
    priority = serializers.IntegerField(
        min_value=1,
        max_value=1000,
        required=False,
        help_text="1 wins over 2: a contact in several target segments gets the variant of the lowest number. "
        "Default: the segment's position in `segments` (first = 1).",
    )
    subject = serializers.CharField(max_length=500, required=False, allow_blank=True)
    body = serializers.CharField(max_length=200_000, required=False, allow_blank=True)
    body_text = serializers.CharField(max_length=200_000, required=False, allow_blank=True)


def segment_ids(**kwargs) -> serializers.ListField:
    return serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=50, **kwargs)


class CampaignIn(StrictSerializer):
    name = serializers.CharField(max_length=200)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, help_text="Default `email`.")
    subject = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="Merge fields: `{{ first_name }}`, `{{ last_name }}`, `{{ email }}`, `{{ external_id }}`, "
        '`{{ country }}`, `{{ city }}`, ..., `{{ attributes.<key> }}`; `{{ first_name|default:"there" }}` for a '
        "fallback. A missing value renders empty.",
    )
    body = serializers.CharField(
        max_length=200_000, required=False, allow_blank=True, help_text="HTML; merged values are escaped."
    )
    body_text = serializers.CharField(
        max_length=200_000, required=False, allow_blank=True, help_text="Plain text; default: derived from `body`."
    )
    from_email = serializers.EmailField(required=False, allow_blank=True, help_text="Default: DEFAULT_FROM_EMAIL.")
    webhook_url = serializers.URLField(
        max_length=2000,
        required=False,
        allow_blank=True,
        validators=[HTTP_URL],
        help_text="Channel `webhook`: the ESP endpoint that receives the audience in signed batches.",
    )
    webhook_secret = serializers.CharField(
        min_length=16, max_length=200, required=False, help_text="HMAC key; generated when omitted."
    )
    segments = segment_ids(required=False, help_text="Target segment ids; their order is the default priority.")
    exclude_segments = segment_ids(required=False, help_text="Members of any of these segments are left out.")
    variants = VariantIn(many=True, required=False, help_text="Content and priority per target segment.")
    holdout_percent = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        required=False,
        help_text="0 to 100: the share of the audience kept as a control group (never sent).",
    )
    scheduled_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="Send then (the campaign becomes `scheduled`); null: back to draft. Not in the past.",
    )
    conversion_window_days = serializers.IntegerField(
        min_value=1,
        max_value=365,
        required=False,
        help_text="Orders within this many days after the send count as conversions (default 7).",
    )


class CampaignPatch(CampaignIn):
    name = serializers.CharField(max_length=200, required=False)


class VariantOut(serializers.ModelSerializer):
    class Meta:
        model = CampaignTarget
        fields = ["segment", "priority", "subject", "body", "body_text"]


class AudienceOut(serializers.Serializer):
    targeted = serializers.IntegerField(help_text="Distinct contacts in the target segments.")
    excluded = serializers.IntegerField(help_text="Left out: in an exclusion segment.")
    unsubscribed = serializers.IntegerField()
    bounced = serializers.IntegerField()
    complained = serializers.IntegerField()
    no_email = serializers.IntegerField(help_text="Left out: no email address (email channel).")
    recipients = serializers.IntegerField(help_text="Reachable contacts: treated + control.")
    control = serializers.IntegerField(help_text="Holdout: frozen but never sent.")
    will_receive = serializers.IntegerField()


class ProgressOut(serializers.Serializer):
    pending = serializers.IntegerField()
    sending = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    control = serializers.IntegerField()


class CampaignOut(serializers.ModelSerializer):
    segments = serializers.SerializerMethodField(help_text="Target segment ids, highest priority first.")
    exclude_segments = serializers.SerializerMethodField()
    variants = serializers.SerializerMethodField()
    holdout_percent = serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=False)
    tracking_key = serializers.CharField(
        read_only=True, help_text="Events whose `campaign` equals this belong to the campaign (reports)."
    )
    audience = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "status",
            "channel",
            "subject",
            "body",
            "body_text",
            "from_email",
            "webhook_url",
            "segments",
            "exclude_segments",
            "variants",
            "holdout_percent",
            "scheduled_at",
            "conversion_window_days",
            "tracking_key",
            "queued_at",
            "started_at",
            "finished_at",
            "audience",
            "progress",
            "last_error",
            "last_error_at",
            "created_at",
            "updated_at",
        ]

    def _targets(self, obj: Campaign) -> list[CampaignTarget]:
        return sorted(obj.targets.all(), key=lambda t: (t.priority, t.segment_id))

    def get_segments(self, obj: Campaign) -> list[int]:
        return [t.segment_id for t in self._targets(obj)]

    def get_exclude_segments(self, obj: Campaign) -> list[int]:
        return sorted(e.segment_id for e in obj.exclusions.all())

    @extend_schema_field(VariantOut(many=True))
    def get_variants(self, obj: Campaign) -> list[dict]:
        return VariantOut(self._targets(obj), many=True).data

    @extend_schema_field(AudienceOut(allow_null=True))
    def get_audience(self, obj: Campaign) -> dict | None:
        """Counts taken when the audience was frozen; null before."""
        return obj.audience or None

    @extend_schema_field(ProgressOut(allow_null=True))
    def get_progress(self, obj: Campaign) -> dict | None:
        """Recipients by delivery status; null before the audience is frozen."""
        if obj.started_at is None:
            return None
        return delivery_progress(campaign=obj)


class CampaignCreatedOut(CampaignOut):
    class Meta(CampaignOut.Meta):
        fields = [*CampaignOut.Meta.fields, "webhook_secret"]


class SendOut(serializers.Serializer):
    started = serializers.BooleanField(help_text="True when this call started the send; false when it already was.")
    campaign = CampaignOut()


class RecipientOut(serializers.ModelSerializer):
    contact = serializers.CharField(source="contact.external_id", help_text="The contact's external_id.")
    email = serializers.CharField(source="contact.email", allow_null=True)
    segment = serializers.IntegerField(source="segment_id", allow_null=True, help_text="Variant: its target segment.")

    class Meta:
        model = CampaignRecipient
        fields = ["id", "contact", "email", "segment", "is_control", "status", "sent_at", "attempts", "last_error"]


RecipientsPageOut = page_of("RecipientsPageOut", RecipientOut)


CampaignsPageOut = page_of("CampaignsPageOut", CampaignOut)


class LiftOut(serializers.Serializer):
    treated = serializers.IntegerField()
    treated_conversions = serializers.IntegerField()
    treated_rate = serializers.FloatField(allow_null=True)
    control = serializers.IntegerField()
    control_conversions = serializers.IntegerField()
    control_rate = serializers.FloatField(allow_null=True)
    lift = serializers.FloatField(allow_null=True, help_text="treated_rate - control_rate.")
    relative_lift = serializers.FloatField(allow_null=True, help_text="lift / control_rate.")
    ci95 = serializers.ListField(
        child=serializers.FloatField(),
        allow_null=True,
        help_text="95% confidence interval of the lift (normal approximation of a difference of proportions).",
    )


class GroupReportOut(serializers.Serializer):
    recipients = serializers.IntegerField(help_text="Treated recipients (not in the holdout).")
    control = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    delivered = serializers.IntegerField(help_text="Sent minus bounced.")
    opens = serializers.IntegerField()
    clicks = serializers.IntegerField()
    unsubscribes = serializers.IntegerField()
    bounces = serializers.IntegerField()
    complaints = serializers.IntegerField()
    open_rate = serializers.FloatField(allow_null=True)
    click_rate = serializers.FloatField(allow_null=True)
    unsubscribe_rate = serializers.FloatField(allow_null=True)
    complaint_rate = serializers.FloatField(allow_null=True)
    bounce_rate = serializers.FloatField(allow_null=True)
    conversions = LiftOut(allow_null=True)


class SegmentReportOut(GroupReportOut):
    segment = serializers.IntegerField()
    name = serializers.CharField()
    priority = serializers.IntegerField()
    warnings = serializers.ListField(child=serializers.CharField(), help_text="Segment health warnings.")


class RevenueOut(serializers.Serializer):
    treated = serializers.DecimalField(max_digits=16, decimal_places=2)
    control = serializers.DecimalField(max_digits=16, decimal_places=2)
    per_treated = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    per_control = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)


class ReportOut(serializers.Serializer):
    campaign = serializers.IntegerField()
    tracking_key = serializers.CharField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    conversion_window_days = serializers.IntegerField()
    conversion_window_ends_at = serializers.DateTimeField(allow_null=True)
    audience = AudienceOut(allow_null=True)
    totals = GroupReportOut()
    revenue = RevenueOut(allow_null=True)
    segments = SegmentReportOut(many=True)


class PreviewIn(StrictSerializer):
    segments = segment_ids()
    exclude_segments = segment_ids(required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    holdout_percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=Decimal("0"), max_value=Decimal("100"), required=False
    )


class PreviewOut(AudienceOut):
    by_segment = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text="Per target segment id: recipients (treated + control) whose variant it is, and control.",
    )
    overlap = serializers.ListField(
        child=serializers.DictField(), help_text='Pairs of target segments: `{"a", "b", "contacts"}` in both.'
    )


class AutomationIn(StrictSerializer):
    name = serializers.CharField(max_length=200)
    segment = serializers.IntegerField(help_text="The segment whose entries (or exits) trigger the automation.")
    trigger = serializers.ChoiceField(choices=Automation.Trigger.choices, required=False, help_text="Default entered.")
    action = serializers.ChoiceField(
        choices=Automation.Action.choices,
        required=False,
        help_text="`campaign`: send that campaign's message (default); `webhook`: POST the contacts.",
    )
    campaign = serializers.IntegerField(required=False, allow_null=True)
    webhook_url = serializers.URLField(max_length=2000, required=False, allow_blank=True, validators=[HTTP_URL])
    webhook_secret = serializers.CharField(min_length=16, max_length=200, required=False)
    frequency = serializers.ChoiceField(
        choices=Automation.Frequency.choices,
        required=False,
        help_text="`once` per contact ever (default), or again after `cooldown_hours`.",
    )
    cooldown_hours = serializers.IntegerField(min_value=0, max_value=24 * 365, required=False)
    active = serializers.BooleanField(required=False)


class AutomationPatch(AutomationIn):
    name = serializers.CharField(max_length=200, required=False)
    segment = serializers.IntegerField(required=False)


class AutomationOut(serializers.ModelSerializer):
    sends = serializers.SerializerMethodField(help_text="Sends by status.")

    class Meta:
        model = Automation
        fields = [
            "id",
            "name",
            "segment",
            "trigger",
            "action",
            "campaign",
            "webhook_url",
            "frequency",
            "cooldown_hours",
            "active",
            "tracking_key",
            "last_change_id",
            "last_run_at",
            "last_error",
            "last_error_at",
            "created_at",
            "sends",
        ]

    def get_sends(self, obj: Automation) -> dict[str, int]:
        from campaigns.selectors import automation_progress

        return automation_progress(automation=obj)


class AutomationCreatedOut(AutomationOut):
    class Meta(AutomationOut.Meta):
        fields = [*AutomationOut.Meta.fields, "webhook_secret"]


class AutomationSendOut(serializers.ModelSerializer):
    contact = serializers.CharField(source="contact.external_id")

    class Meta:
        model = AutomationSend
        fields = ["id", "contact", "change_id", "triggered_at", "status", "sent_at", "attempts", "last_error"]


AutomationsPageOut = page_of("AutomationsPageOut", AutomationOut)
AutomationSendsPageOut = page_of("AutomationSendsPageOut", AutomationSendOut)
