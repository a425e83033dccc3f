"""manage.py setup_demo [--contacts N] [--password P]: the quick start's idempotent demo setup."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from contacts.demo.loader import DEFAULT_WORKSPACE, demo_now
from contacts.demo.setup import DEMO_USERNAME, SECOND_WORKSPACE, password_file, setup_demo

SERVER = "http://127.0.0.1:8000"


class Command(BaseCommand):
    help = "Create the demo workspaces with data, the demo login and an API key, where missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--contacts", type=int, default=2000, help="contacts of the Demo Shop (default 2000)")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--password", help="password of a new demo user (default: kept in var/, or random)")

    def handle(self, *args, **options) -> None:
        if options["contacts"] < 1:
            raise CommandError("--contacts must be at least 1")
        result = setup_demo(
            contacts=options["contacts"],
            seed=options["seed"],
            now=demo_now(),
            password=options["password"],
            progress=self.stdout.write,
        )
        write = self.stdout.write
        for name in (DEFAULT_WORKSPACE, SECOND_WORKSPACE):
            state = "seeded now" if name in result.seeded else "already has data, left as it is"
            write(f"Workspace {name!r}: {state}.")
        write("")
        write(self.style.SUCCESS("Demo ready."))
        write(f"  Sign in:  {SERVER}{settings.LOGIN_URL}")
        write(f"  Username: {DEMO_USERNAME}")
        if result.user_created:
            write(f"  Password: {result.password}   (kept in {password_file()})")
        else:
            if result.password:
                write(f"  Password: {result.password}   (as first set, from {password_file()})")
            if options["password"]:
                write("  The demo user exists: --password was not applied.")
            write(f"  The user existed and was not changed; reset its password with: "
                  f"python manage.py changepassword {DEMO_USERNAME}")
        if result.api_key:
            write(f"  API key for {DEFAULT_WORKSPACE!r} (shown once):")
            write(f"  {result.api_key}")
        else:
            write(f"  {DEFAULT_WORKSPACE!r} already has an API key; create another with: "
                  f'python manage.py create_api_key --workspace "{DEFAULT_WORKSPACE}"')
