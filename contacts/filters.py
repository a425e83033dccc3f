"""Filters of `GET /api/v1/contacts/`. A bad value is a 400 naming the parameter, never an empty page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, QuerySet

from config.api_errors import ApiError
from contacts.ingest.fields import COUNTRY_CODES, FieldError, parse_datetime_value
from contacts.models import Contact, ContactTag
from segments_app.models import Segment, SegmentMember


class TextFormField(forms.CharField):
    """Text PostgreSQL can compare: a NUL character would be a database error, not an empty result."""

    def clean(self, value: Any) -> str | None:
        value = super().clean(value)
        if value and "\x00" in value:
            raise forms.ValidationError("must not contain NUL characters")
        return value


class CountryFormField(forms.CharField):
    def clean(self, value: Any) -> str | None:
        value = super().clean(value)
        if not value:
            return None
        code = value.strip().upper()
        if code not in COUNTRY_CODES:
            raise forms.ValidationError("must be an ISO 3166-1 alpha-2 country code, e.g. PL")
        return code


class IsoMomentFormField(forms.CharField):
    """ISO 8601 date or datetime, read like ingest reads it: no offset is UTC, a bare date midnight UTC."""

    def clean(self, value: Any) -> datetime | None:
        value = super().clean(value)
        if not value:
            return None
        try:
            return parse_datetime_value(value)
        except FieldError as exc:
            raise forms.ValidationError(exc.message) from exc


class TextFilter(django_filters.CharFilter):
    field_class = TextFormField


class IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class CountryFilter(django_filters.CharFilter):
    field_class = CountryFormField


class IsoMomentFilter(django_filters.CharFilter):
    field_class = IsoMomentFormField


class ContactFilter(django_filters.FilterSet):
    email = TextFilter(field_name="email", lookup_expr="iexact", help_text="Exact, ignoring case.")
    country = CountryFilter(field_name="country", help_text="ISO 3166-1 alpha-2 code, any case.")
    tag = TextFilter(method="filter_tag", help_text="Contacts with this tag (name).")
    email_status = django_filters.ChoiceFilter(field_name="email_status", choices=Contact.EmailStatus.choices)
    created_after = IsoMomentFilter(
        field_name="created_at", lookup_expr="gte", help_text="created_at at or after this ISO 8601 date or datetime."
    )
    created_before = IsoMomentFilter(
        field_name="created_at", lookup_expr="lt", help_text="created_at before this ISO 8601 date or datetime."
    )
    segment = IdFilter(
        method="filter_segment",
        min_value=1,
        max_value=2**63 - 1,
        help_text="Id of a segment of this workspace: its stored members.",
    )

    class Meta:
        model = Contact
        fields: list[str] = []

    def filter_tag(self, queryset: QuerySet[Contact], name: str, value: str) -> QuerySet[Contact]:
        return queryset.filter(Exists(ContactTag.objects.filter(contact=OuterRef("pk"), tag__name=value)))

    def filter_segment(self, queryset: QuerySet[Contact], name: str, value: int) -> QuerySet[Contact]:
        workspace = getattr(self.request, "workspace", None)
        segment = Segment.objects.filter(pk=value, workspace=workspace).first()
        if segment is None:
            # Another workspace's id is a 404 (api.md, Access), as it would be at /segments/{id}/.
            raise ApiError([{"path": "segment", "message": "no segment with this id in the workspace"}], 404)
        return queryset.filter(Exists(SegmentMember.objects.filter(segment=segment, contact=OuterRef("pk"))))
