"""Filters of a segment's members table (django-filter): who among the stored members to show or export."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from contacts.filters import TextFormField
from contacts.models import Contact, ContactStats
from segments_app.models import SegmentMember


class TextFilter(django_filters.CharFilter):
    """Text PostgreSQL can compare (a NUL character is a form error, not a server error)."""

    field_class = TextFormField


class MemberFilter(django_filters.FilterSet):
    """Filters over `SegmentMember` rows; the same filters drive the table and its CSV export."""

    q = TextFilter(method="search", label="Search", widget=forms.TextInput(
        attrs={"type": "search", "placeholder": "Email, name or id"}))
    country = TextFilter(field_name="contact__country", lookup_expr="iexact", label="Country",
                                        widget=forms.TextInput(attrs={"placeholder": "e.g. PL", "size": 4}))
    email_status = django_filters.ChoiceFilter(field_name="contact__email_status", label="Email status",
                                               choices=Contact.EmailStatus.choices, empty_label="Any")
    lifecycle_stage = django_filters.ChoiceFilter(field_name="contact__stats__lifecycle_stage", label="Lifecycle",
                                                  choices=ContactStats.Lifecycle.choices, empty_label="Any")
    tag = TextFilter(method="with_tag", label="Tag")
    entered_after = django_filters.DateFilter(field_name="since", lookup_expr="date__gte", label="Entered from",
                                              widget=forms.DateInput(attrs={"type": "date"}))

    class Meta:
        model = SegmentMember
        fields: list[str] = []

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(contact__email__icontains=value)
            | Q(contact__external_id=value)
            | Q(contact__first_name__icontains=value)
            | Q(contact__last_name__icontains=value)
        )

    def with_tag(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        # A semi-join: a contact with two matching tag rows must not appear twice.
        return queryset.filter(contact_id__in=Contact.objects.filter(tags__name=value).values("pk"))
