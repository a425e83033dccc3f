"""Playwright in Debian's Chromium against Django's live server (see shared notes on playwright-conftest).

Browser tests are marked `browser` and skipped when Chromium is missing. Screenshots go to
$SCREENSHOT_DIR when it is set (`SCREENSHOT_DIR=docs/screenshots pytest -m browser` refreshes the
README's pictures), otherwise to a temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import sync_playwright

from contacts.models import Workspace, WorkspaceMember

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
PASSWORD = "a-long-test-password-9"


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists():
        return
    skip = pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM} (set CHROMIUM_PATH)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module", autouse=True)
def sync_orm_next_to_playwright():
    """Playwright's sync API runs an asyncio loop in the main thread; the ORM calls of these tests are safe.

    Set for the browser test modules only, not for the whole run: subprocesses of other tests
    (`check --deploy`) must not see it.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def browser(sync_orm_next_to_playwright):
    """Chromium for one test module, stopped after it.

    Not pytest-playwright's session-wide browser: while Playwright runs, its asyncio loop makes every
    later ORM call in the main thread look async (SynchronousOnlyOperation in other packages' tests).
    Tests name `shop` (the database) before `page`, so a test database is created before Playwright starts.
    """
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    directory = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def shop(transactional_db) -> Workspace:
    return Workspace.objects.create(name="Demo Shop", currency="EUR")


def make_user(workspace: Workspace, username: str, role: str):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    WorkspaceMember.objects.create(workspace=workspace, user=user, role=role)
    return user


def sign_in(page, live_server, username: str) -> None:
    """Sign in through the login page, as a person would."""
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
