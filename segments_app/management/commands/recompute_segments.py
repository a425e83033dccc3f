"""manage.py recompute_segments [--workspace NAME] [--segment ID]: recompute stored memberships by hand.

Runs the same service as the Celery task (`membership.run_recompute`, trigger "manual"), in this
process; failures are recorded on the segment as they would be by the task.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from contacts.models import Workspace
from segments_app.membership import Trigger, run_recompute
from segments_app.models import Segment


class Command(BaseCommand):
    help = "Recompute the stored membership of segments now (all, one workspace's, or one segment)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="name of the workspace (default: every workspace)")
        parser.add_argument("--segment", type=int, help="id of one segment")

    def handle(self, *args, workspace: str | None = None, segment: int | None = None, **options):
        segments = Segment.objects.order_by("pk")
        if workspace is not None:
            if not Workspace.objects.filter(name=workspace).exists():
                raise CommandError(f"no workspace named {workspace!r}")
            segments = segments.filter(workspace__name=workspace)
        if segment is not None:
            segments = segments.filter(pk=segment)
            if not segments.exists():
                raise CommandError(f"no segment {segment}" + (f" in workspace {workspace!r}" if workspace else ""))
        failed = 0
        for segment_id, name in segments.values_list("pk", "name"):
            try:
                snapshot = run_recompute(segment_id=segment_id, trigger=Trigger.MANUAL)
            except Exception as exc:  # noqa: BLE001 - recorded on the segment; report and go on with the others
                failed += 1
                self.stderr.write(f"segment {segment_id} {name!r}: failed: {exc}")
                continue
            if snapshot is not None:
                self.stdout.write(
                    f"segment {segment_id} {name!r}: {snapshot.size} members, +{snapshot.entered} "
                    f"-{snapshot.exited} in {snapshot.duration_ms} ms"
                )
        if failed:
            raise CommandError(f"{failed} segment(s) failed; see last_error on each")
