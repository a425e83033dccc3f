"""Campaigns and automations (issue 6)."""
