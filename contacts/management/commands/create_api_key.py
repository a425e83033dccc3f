"""manage.py create_api_key --workspace NAME: print a new API key as the last line."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from contacts.api_keys import issue_api_key


class Command(BaseCommand):
    help = "Create an API key for a workspace (created if missing). The key is printed once, as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", required=True, help="workspace name")
        parser.add_argument("--name", default="", help="a label for the key, e.g. the ESP that uses it")

    def handle(self, *args, workspace: str, name: str, **options) -> None:
        workspace_name = workspace.strip()
        if not workspace_name:
            self.stderr.write("--workspace must not be empty")
            raise SystemExit(2)
        api_key, raw_key, created = issue_api_key(workspace_name=workspace_name, key_name=name)
        if created:
            self.stdout.write(f"Created workspace {workspace_name!r}.")
        self.stdout.write(f"API key {api_key.prefix}… for workspace {workspace_name!r} (shown once, store it now):")
        self.stdout.write(raw_key)
