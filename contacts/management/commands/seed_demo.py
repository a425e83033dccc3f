"""manage.py seed_demo --contacts N --seed S [--workspace NAME] [--now ISO] [--reset]"""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

from contacts.demo.loader import DEFAULT_WORKSPACE, SeedRefused, demo_now, reset_workspace_data, seed_workspace
from contacts.models import Workspace


def parse_now(value: str) -> datetime:
    """An ISO 8601 datetime or date; without an offset it is UTC."""
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--now must be an ISO 8601 date or datetime, got {value!r}")
        parsed = datetime(day.year, day.month, day.day)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Fill a workspace with a believable demo shop: products, contacts, orders, events (deterministic)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--contacts", type=int, default=2000, help="number of contacts (default 2000)")
        parser.add_argument("--seed", type=int, default=1, help="random seed; same seed and now, same data")
        parser.add_argument("--workspace", default=DEFAULT_WORKSPACE, help=f"default {DEFAULT_WORKSPACE!r}")
        parser.add_argument("--now", help="ISO time every timestamp is relative to (default: this hour, UTC)")
        parser.add_argument("--reset", action="store_true", help="delete the workspace's data first")
        parser.add_argument("--chunk-size", type=int, default=5000, help="contacts generated and written at once")

    def handle(self, *args, **options) -> None:
        if options["contacts"] < 1:
            raise CommandError("--contacts must be at least 1")
        now = demo_now(parse_now(options["now"]) if options["now"] else None)
        workspace, created = Workspace.objects.get_or_create(name=options["workspace"])
        if created:
            self.stdout.write(f"Created workspace {workspace.name!r}.")
        elif options["reset"]:
            self.stdout.write(f"Deleting the data of workspace {workspace.name!r} ...")
            reset_workspace_data(workspace=workspace)
        try:
            result = seed_workspace(
                workspace=workspace,
                contacts=options["contacts"],
                seed=options["seed"],
                now=now,
                progress=self.stdout.write,
                chunk_size=options["chunk_size"],
            )
        except SeedRefused as exc:
            raise CommandError(f"{exc}; use --reset to replace its data, or --workspace for another one") from exc
        self.stdout.write("")
        self.stdout.write("| table | rows |")
        self.stdout.write("|---|---:|")
        for table, count in result.counts.items():
            self.stdout.write(f"| {table} | {count:,} |")
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phases.items())
        self.stdout.write(self.style.SUCCESS(f"Seeded {workspace.name!r} in {result.seconds:.1f} s ({phases})."))
