"""Shapes of the segments API, for output and for the OpenAPI description.

Input is checked by the services (`segments_app.services`) in plain Python so that every problem is
reported at once with its path; the `*In` serializers below describe that input for drf-spectacular.
The definition is one field type, `DefinitionField`, documented as the `SegmentDefinition` component
(the JSON Schema generated from the catalog by `segments_app.schema`).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from contacts.models import Contact
from contacts.serializers import ApiErrorOut
from segments_app.models import Segment

from .schema import ROOT
from .services import DESCRIPTION_MAX, NAME_MAX, REFRESH_MINUTES_DEFAULT, REFRESH_MINUTES_MAX


class DefinitionField(serializers.JSONField):
    """A segment definition (JSON); documented as the `SegmentDefinition` component."""


class DefinitionFieldExtension(OpenApiSerializerFieldExtension):
    """Points the field at the `SegmentDefinition` component (added by `schema.add_definition_components`)."""

    target_class = DefinitionField

    def map_serializer_field(self, auto_schema, direction):  # noqa: ANN001, ANN201 - drf-spectacular's signature
        return {"$ref": f"#/components/schemas/{ROOT}"}


# --- input (documentation) ----------------------------------------------------------------------------


class SegmentIn(serializers.Serializer):
    name = serializers.CharField(
        max_length=NAME_MAX, help_text="Required; unique in the workspace ignoring case; surrounding spaces trimmed."
    )
    description = serializers.CharField(max_length=DESCRIPTION_MAX, required=False, allow_blank=True, default="")
    definition = DefinitionField(help_text="The rule (segment definition format, version 1).")
    refresh_minutes = serializers.IntegerField(
        min_value=0,
        max_value=REFRESH_MINUTES_MAX,
        required=False,
        default=REFRESH_MINUTES_DEFAULT,
        help_text="How often the stored membership is recomputed; 0 means only on demand.",
    )


class SegmentPatchIn(SegmentIn):
    name = serializers.CharField(max_length=NAME_MAX, required=False)
    description = serializers.CharField(max_length=DESCRIPTION_MAX, required=False, allow_blank=True)
    definition = DefinitionField(required=False, help_text="A new rule; validated exactly as on create.")
    refresh_minutes = serializers.IntegerField(min_value=0, max_value=REFRESH_MINUTES_MAX, required=False)


class SegmentPreviewIn(serializers.Serializer):
    definition = DefinitionField(help_text="The rule to evaluate now.")
    segment_id = serializers.IntegerField(
        required=False,
        help_text="The segment being edited, if any: the definition may refer to other segments but not, "
        "directly or through them, to this one.",
    )


# --- output -----------------------------------------------------------------------------------------------


class SegmentOut(serializers.ModelSerializer):
    summary = serializers.SerializerMethodField(help_text="The definition in plain English.")
    definition = DefinitionField()
    size = serializers.IntegerField(allow_null=True, help_text="Members at the last computation; null before.")
    computed_at = serializers.DateTimeField(allow_null=True, help_text="When the membership was last computed.")
    status = serializers.ChoiceField(
        choices=Segment.Status.choices,
        help_text="new (never computed), computing, fresh, failed (see last_error; retried with backoff).",
    )

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "definition",
            "summary",
            "size",
            "computed_at",
            "refresh_minutes",
            "status",
            "last_error",
            "created_at",
            "updated_at",
        ]

    def get_summary(self, segment: Segment) -> str:
        return self.context.get("summaries", {}).get(segment.pk, "")


class SegmentsPageOut(serializers.Serializer):
    results = SegmentOut(many=True)
    next = serializers.URLField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Pass as ?cursor= for the next page.")


class SegmentPreviewContactOut(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["external_id", "email", "first_name", "last_name", "country", "city", "email_status"]


class SegmentPreviewOut(serializers.Serializer):
    count = serializers.IntegerField(help_text="Contacts matching the definition now.")
    sample = SegmentPreviewContactOut(many=True, help_text="Up to 10 of them, in the order they were added.")
    summary = serializers.CharField(help_text="The definition in plain English.")


class SegmentUserRefOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SegmentUsedByOut(serializers.Serializer):
    segments = SegmentUserRefOut(many=True, help_text="Segments whose definition refers to this one.")
    campaigns = SegmentUserRefOut(many=True, help_text="Campaigns that target or exclude it.")


class SegmentInUseOut(serializers.Serializer):
    errors = ApiErrorOut(many=True)
    used_by = SegmentUsedByOut(
        help_text="Who uses the segment. Other kinds of users (e.g. webhook_endpoints that send only this "
        "segment's changes) appear under their own key."
    )


class SegmentTemplateOut(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField()
    definition = DefinitionField()


class SegmentFieldOut(serializers.Serializer):
    key = serializers.CharField(help_text='What a definition names as "field", e.g. total_spent or attributes.plan.')
    label = serializers.CharField()
    category = serializers.CharField(help_text="Contact details, Tags, Purchases, Behaviour, Computed or Segments.")
    type = serializers.ChoiceField(choices=["text", "number", "datetime", "boolean", "choice", "property"])
    operators = serializers.ListField(child=serializers.CharField())
    choices = serializers.ListField(child=serializers.CharField(), help_text="For choice fields.")
    widget = serializers.CharField(help_text="The value editor the wizard shows.")
    description = serializers.CharField()


class SegmentMeasureOut(serializers.Serializer):
    type = serializers.CharField()
    operators = serializers.ListField(child=serializers.CharField())


class SegmentConditionKindOut(serializers.Serializer):
    type = serializers.CharField(help_text="tag, orders, event or segment.")
    label = serializers.CharField()
    category = serializers.CharField()
    operators = serializers.ListField(child=serializers.CharField())
    measures = serializers.DictField(child=SegmentMeasureOut())


class SegmentFieldCatalogOut(serializers.Serializer):
    fields = SegmentFieldOut(many=True, help_text="Attribute condition fields: contact details, computed, custom.")
    order_filters = SegmentFieldOut(many=True, help_text="Filters of orders conditions (order and item fields).")
    event_filters = SegmentFieldOut(many=True, help_text="Filters of event conditions (plus properties.<key>).")
    event_types = serializers.ListField(child=serializers.CharField(), help_text="Built-in, then custom types.")
    conditions = SegmentConditionKindOut(many=True, help_text="The other condition types and their operators.")


class SegmentExplainNodeOut(serializers.Serializer):
    path = serializers.CharField(help_text='Where the node is in the definition, e.g. "conditions[2].conditions[0]".')
    summary = serializers.CharField(help_text="The node in plain English.")
    holds = serializers.BooleanField(help_text="Whether it holds for the contact now.")
    observed = serializers.JSONField(
        required=False, allow_null=True, help_text="Conditions: the value the condition looked at (null: missing)."
    )
    text = serializers.CharField(required=False, help_text='e.g. "spent 412.50 EUR on Acme products ... > 300: yes"')
    match = serializers.ChoiceField(choices=["all", "any", "none"], required=False, help_text="Groups only.")
    conditions = serializers.ListField(
        child=serializers.JSONField(), required=False, help_text="Groups only: their nodes, explained the same way."
    )


class SegmentExplainContactOut(serializers.Serializer):
    external_id = serializers.CharField()
    email = serializers.CharField(allow_null=True)


class SegmentExplainSegmentOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SegmentExplainOut(serializers.Serializer):
    segment = SegmentExplainSegmentOut()
    contact = SegmentExplainContactOut()
    member = serializers.BooleanField(help_text="Whether the contact matches the definition now.")
    evaluated_at = serializers.DateTimeField()
    summary = serializers.CharField()
    match = serializers.ChoiceField(choices=["all", "any", "none"])
    conditions = SegmentExplainNodeOut(many=True, help_text="The top-level nodes in definition order.")
