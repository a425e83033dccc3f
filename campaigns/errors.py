"""Errors the campaign services and selectors raise; the API and the pages turn them into answers."""

from __future__ import annotations


class CampaignInvalid(Exception):
    """Input a campaign (or automation, or preview) cannot take; `errors` are located: [{"path", "message"}]."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['path']}: {e['message']}" for e in errors))
        self.errors = errors


class CampaignLocked(Exception):
    """The campaign is being sent or was sent: its settings can no longer change."""
