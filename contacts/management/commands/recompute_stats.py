"""manage.py recompute_stats [--workspace NAME]: rebuild the computed contact figures in bulk."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from contacts.models import Workspace
from contacts.stats import recompute_workspace_stats


class Command(BaseCommand):
    help = "Rebuild every contact's computed figures (and RFM scores) of one workspace or of all of them."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="name of the workspace (default: every workspace)")

    def handle(self, *args, workspace: str | None = None, **options):
        workspaces = Workspace.objects.order_by("pk")
        if workspace is not None:
            workspaces = workspaces.filter(name=workspace)
            if not workspaces.exists():
                raise CommandError(f"no workspace named {workspace!r}")
        total, started = 0, time.perf_counter()
        for ws in workspaces:
            ws_started = time.perf_counter()
            count = recompute_workspace_stats(workspace_id=ws.pk)
            total += count
            self.stdout.write(f"{ws.name}: {count} contacts in {time.perf_counter() - ws_started:.2f} s")
        self.stdout.write(f"Recomputed {total} contacts in {time.perf_counter() - started:.2f} s")
