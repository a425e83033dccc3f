"""Forms of the segment pages: the segment's name and refresh interval (the definition is the builder's)."""

from __future__ import annotations

from django import forms

REFRESH_CHOICES = [
    (0, "Only when I refresh it"),
    (5, "Every 5 minutes"),
    (15, "Every 15 minutes"),
    (60, "Every hour"),
    (360, "Every 6 hours"),
    (1440, "Every day"),
    (10080, "Every week"),
]


class SegmentMetaForm(forms.Form):
    """What the builder saves besides the definition.

    The service checks the rest, and for the wizard also that no other segment has the name."""

    name = forms.CharField(max_length=200, label="Name")
    description = forms.CharField(required=False, label="Description", widget=forms.Textarea(attrs={"rows": 2}))
    refresh_minutes = forms.TypedChoiceField(
        choices=REFRESH_CHOICES, coerce=int, initial=60, label="Keep it current",
        help_text="How often the stored members are recomputed; real-time updates come on top.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        current = self.initial.get("refresh_minutes")
        # A segment saved through the API may have any interval: offer it rather than silently changing it.
        if isinstance(current, int) and current not in dict(REFRESH_CHOICES):
            self.fields["refresh_minutes"].choices = [*REFRESH_CHOICES, (current, f"Every {current} minutes")]
        for field in self.fields.values():
            field.widget.attrs.setdefault("data-no-preview", "")
