"""A marketer's day in Chromium: sign in, build a nested segment, watch its live count, save, refresh,
read the history and the members, open a contact and its explanation, import a CSV.

The live count is checked against numbers computed here, in plain Python, from the data the test made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from contacts.models import Contact, Workspace
from contacts.stats import recompute_workspace_stats
from segments_app import builder
from segments_app.membership import recompute_membership
from segments_app.models import Segment, SegmentSnapshot
from tests.browser.conftest import make_user, sign_in
from tests.factories import make_contact, make_event, make_order, make_product

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


@dataclass
class Person:
    email: str
    orders: list[tuple[str, int, int]] = field(default_factory=list)  # (producer, amount, days ago)
    opens: list[int] = field(default_factory=list)  # email opens, days ago
    tags: list[str] = field(default_factory=list)
    country: str = "DE"


PEOPLE = [
    Person("ada@example.com", [("Acme", 150, 10)], [2], country="PL"),
    Person("ben@example.com", [("Acme", 150, 10)], [], ["vip"]),
    Person("cleo@example.com", [("Acme", 50, 10), ("Acme", 60, 20)], [1]),
    Person("dan@example.com", [("Acme", 500, 300)], [1]),
    Person("eve@example.com", [("Bolt", 500, 5)], [1]),
    Person("finn@example.com", [], [1]),
    Person("gus@example.com", [("Acme", 80, 5)], [1]),
    Person("hana@example.com", [("Acme", 120, 30), ("Bolt", 30, 1)], [20]),
    Person("ivo@example.com", [("Acme", 200, 100)], [3, 40]),
    Person("jon@example.com", [("Acme", 101, 2)], []),
]


def acme_spend_within(person: Person, days: int) -> int:
    return sum(amount for producer, amount, ago in person.orders if producer == "Acme" and ago <= days)


def opened_within(person: Person, days: int) -> bool:
    return any(ago <= days for ago in person.opens)


# What each step of the build should count, decided from PEOPLE alone (six months are at least 181 days).
EXPECTED = {
    "has ordered": {p.email for p in PEOPLE if p.orders},
    "ordered from Acme": {p.email for p in PEOPLE if any(o[0] == "Acme" for o in p.orders)},
    "spent over 100 on Acme in 6 months": {p.email for p in PEOPLE if acme_spend_within(p, 181) > 100},
    "... and opened in 30 days": {p.email for p in PEOPLE if acme_spend_within(p, 181) > 100 and opened_within(p, 30)},
    "... and (opened in 30 days or vip)": {
        p.email for p in PEOPLE if acme_spend_within(p, 181) > 100 and (opened_within(p, 30) or "vip" in p.tags)
    },
    "... and (opened in 7 days or vip)": {
        p.email for p in PEOPLE if acme_spend_within(p, 181) > 100 and (opened_within(p, 7) or "vip" in p.tags)
    },
}


def load_shop(workspace: Workspace) -> dict[str, Contact]:
    now = timezone.now()
    products = {name: make_product(workspace, producer=name, name=f"{name} kettle") for name in ("Acme", "Bolt")}
    contacts = {}
    for person in PEOPLE:
        first = person.email.split("@")[0].capitalize()
        contact = make_contact(workspace, email=person.email, first_name=first, country=person.country,
                               tags=person.tags, email_status="subscribed")
        for producer, amount, ago in person.orders:
            make_order(contact, items=[(products[producer], 1, Decimal(amount))], ordered_at=now - timedelta(days=ago))
        for ago in person.opens:
            make_event(contact, "email_open", occurred_at=now - timedelta(days=ago, hours=1), campaign="spring")
        contacts[person.email] = contact
    recompute_workspace_stats(workspace_id=workspace.pk)
    return contacts


def expect_count(page: Page, step: str) -> None:
    expect(page.locator("#preview .count")).to_have_attribute("data-count", str(len(EXPECTED[step])), timeout=8000)


def settled(page: Page) -> None:
    """Wait until htmx has answered and wired the new content (a person is never faster than that)."""
    page.wait_for_function(
        "!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )


def pick(page: Page, group: str, search: str, choice: str) -> None:
    """Open a group's "+ Add condition" picker, search, and choose."""
    panel = page.locator(f"#{group} > .group-actions details.picker")
    panel.locator("summary").click()
    panel.get_by_label("Search fields").fill(search)
    panel.get_by_role("button", name=choice).first.click()
    settled(page)


def test_build_save_refresh_and_explain_a_nested_segment(shop, live_server, page: Page, screenshots):
    contacts = load_shop(shop)
    make_user(shop, "marta", "editor")
    sign_in(page, live_server, "marta")
    expect(page.get_by_role("heading", name="No segments yet")).to_be_visible()

    page.get_by_role("link", name="Build your first segment").click()
    page.get_by_role("link", name="Start from blank").click()
    expect(page.locator("#preview .count")).to_have_attribute("data-count", str(len(PEOPLE)))

    # An orders condition: bought something, then from Acme, then over 100 in the last 6 months.
    pick(page, "node-root", "orders", "Orders")
    expect_count(page, "has ordered")
    page.get_by_role("button", name="+ Add filter").click()
    settled(page)
    page.get_by_label("Filter 1 field").select_option("product.producer")
    settled(page)
    expect(page.get_by_label("Producer value")).to_be_visible()
    page.get_by_label("Producer value").fill("Acme")
    expect_count(page, "ordered from Acme")
    page.get_by_label("Measure", exact=True).select_option("sum")
    settled(page)
    expect(page.get_by_label("Operator", exact=True)).to_have_value("gte")
    page.get_by_label("Operator", exact=True).select_option("gt")
    settled(page)
    page.get_by_label("Time window").select_option("last")
    settled(page)
    expect(page.get_by_label("Window length")).to_have_value("30")
    page.get_by_label("Window length").fill("6")
    page.get_by_label("Window unit").select_option("months")
    page.get_by_label("total amount", exact=True).fill("100")
    expect_count(page, "spent over 100 on Acme in 6 months")

    # A nested "any of" group: an event condition or a tag.
    page.locator("#node-root > .group-actions").get_by_role("button", name="+ Add group").click()
    settled(page)
    expect(page.locator("#err-conditions-1")).to_contain_text("a nested group needs at least one condition")
    expect(page.locator("#preview .count")).to_have_attribute("data-count", "")
    pick(page, "node-conditions-1", "email", "Events")
    expect_count(page, "... and opened in 30 days")
    expect(page.locator("#err-conditions-1")).to_be_empty()
    pick(page, "node-conditions-1", "tag", "Has tags")
    page.get_by_label("Tag 1").fill("vip")
    expect_count(page, "... and (opened in 30 days or vip)")
    page.locator("#f-conditions-1-conditions-0-window-last").fill("7")
    expect_count(page, "... and (opened in 7 days or vip)")
    examples = page.locator("#preview-sample .sample a")
    expect(examples).to_have_count(len(EXPECTED["... and (opened in 7 days or vip)"]))
    assert set(examples.all_inner_texts()) == EXPECTED["... and (opened in 7 days or vip)"]
    expect(page.locator("#preview .summary")).to_have_text(
        "Contacts who bought Acme products for over 100 EUR in the last 6 months and "
        "(who opened an email in the last 7 days or are tagged vip)"
    )
    page.screenshot(path=str(screenshots / "builder.png"), full_page=True)

    page.get_by_label("Name", exact=True).fill("Engaged Acme fans")
    page.get_by_label("Keep it current").select_option("15")
    page.get_by_role("button", name="Save segment").click()

    # The segment page: computed at save (no broker: in-process), then refreshed on demand.
    expect(page.get_by_role("heading", name="Engaged Acme fans")).to_be_visible()
    expected = EXPECTED["... and (opened in 7 days or vip)"]
    expect(page.locator("#status [data-size]")).to_have_attribute("data-size", str(len(expected)))
    page.get_by_role("button", name="Refresh now").click()
    expect(page.locator("#status .done")).to_contain_text(f"Done: {len(expected)} members, 0 entered and 0 left")
    chart_drawn = "Chart.getChart(document.querySelector('#history canvas')) !== undefined"
    page.wait_for_function(chart_drawn)
    page.get_by_text("Show the latest computations as a table").click()
    expect(page.locator("#history tbody tr")).to_have_count(2)  # the computation at save and the refresh
    members = page.locator("#members tbody td:first-child a")
    expect(members).to_have_count(len(expected))
    assert set(members.all_inner_texts()) == expected
    segment = Segment.objects.get(workspace=shop, name="Engaged Acme fans")
    assert set(segment.members.values_list("contact__email", flat=True)) == expected
    page.screenshot(path=str(screenshots / "segment.png"), full_page=True)

    # A member's page and why they are in.
    page.get_by_role("link", name="ada@example.com").click()
    expect(page.get_by_role("heading", name="Ada")).to_be_visible()
    expect(page.locator("#timeline")).to_contain_text("email_open")
    page.get_by_label("Why is this contact in a segment, or not?").select_option(label="Engaged Acme fans (member)")
    explanation = page.locator("#explanation")
    expect(explanation).to_contain_text("In “Engaged Acme fans”")
    expect(explanation).to_contain_text("spent 150.00 EUR on Acme products in the last 6 months > 100: yes")
    page.screenshot(path=str(screenshots / "contact.png"), full_page=True)

    # Someone who is not in: the explanation says which condition fails.
    page.goto(f"{live_server.url}/contacts/{contacts['gus@example.com'].pk}/")
    page.get_by_label("Why is this contact in a segment, or not?").select_option(label="Engaged Acme fans")
    expect(page.locator("#explanation")).to_contain_text("Not in “Engaged Acme fans”")
    expect(page.locator("#explanation .fails").first).to_contain_text("80.00 EUR")

    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("link", name="Engaged Acme fans")).to_be_visible()


def test_the_builder_works_from_the_keyboard(shop, live_server, page: Page):
    load_shop(shop)
    make_user(shop, "kim", "editor")
    sign_in(page, live_server, "kim")
    page.goto(f"{live_server.url}/segments/new/builder/")
    summary = page.locator("#node-root > .group-actions summary")
    summary.focus()
    page.keyboard.press("Enter")  # opens the picker and moves to its search box
    expect(page.get_by_label("Search fields").first).to_be_focused()
    page.keyboard.type("country")
    page.keyboard.press("Enter")  # the first field still shown
    settled(page)
    # The focus lands on the new condition; Tab twice: past its operator, into its value.
    expect(page.get_by_label("Field", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    country = page.get_by_label("Country value")
    expect(country).to_be_focused()
    page.keyboard.type("PL")
    expect(page.locator("#preview .count")).to_have_attribute(
        "data-count", str(sum(p.country == "PL" for p in PEOPLE)))
    # Enter in a value applies it; it does not save the segment, and the focus stays in the box.
    page.keyboard.press("Enter")
    expect(country).to_be_focused()
    assert page.url.endswith("/segments/new/builder/")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible


def test_what_is_typed_while_the_builder_answers_is_kept(shop, live_server, page: Page, monkeypatch):
    load_shop(shop)
    make_user(shop, "tom", "editor")
    sign_in(page, live_server, "tom")
    page.goto(f"{live_server.url}/segments/new/builder/")
    pick(page, "node-root", "spent", "Total spent")
    real_view = builder.builder_view

    def slow_builder_view(*args, **kwargs):
        time.sleep(0.8)  # a slow answer: the marketer types on meanwhile
        return real_view(*args, **kwargs)

    monkeypatch.setattr(builder, "builder_view", slow_builder_view)
    page.get_by_label("Operator", exact=True).select_option("gt")
    page.get_by_label("Total spent value").fill("100")
    settled(page)
    expect(page.get_by_label("Operator", exact=True)).to_have_value("gt")
    expect(page.get_by_label("Total spent value")).to_have_value("100")
    spent = {p.email: sum(amount for _, amount, _ in p.orders) for p in PEOPLE}
    expect(page.locator("#preview .count")).to_have_attribute(
        "data-count", str(sum(total > 100 for total in spent.values())))


def test_a_viewer_sees_no_edit_controls(shop, live_server, page: Page):
    load_shop(shop)
    Segment.objects.create(workspace=shop, name="Everyone", definition={"match": "all", "conditions": []})
    make_user(shop, "vera", "viewer")
    sign_in(page, live_server, "vera")
    expect(page.get_by_role("link", name="Everyone")).to_be_visible()
    expect(page.get_by_role("link", name="+ New segment")).to_have_count(0)
    page.get_by_role("link", name="Everyone").click()
    expect(page.get_by_role("button", name="Refresh now")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    response = page.goto(f"{live_server.url}/segments/new/")
    assert response.status == 403


def test_import_a_csv_of_contacts(shop, live_server, page: Page, tmp_path, screenshots, settings):
    settings.VAR_DIR = tmp_path
    make_user(shop, "ines", "editor")
    sign_in(page, live_server, "ines")
    bad = tmp_path / "bad.csv"
    bad.write_text("Customer ID;E-mail;Country\nk1;kate@example.com;PL\nk2;not-an-email;XX\n")
    good = tmp_path / "customers.csv"
    good.write_text("Customer ID;E-mail;Country;Tags;Plan\nk1;kate@example.com;PL;vip;pro\n"
                    "k2;leo@example.com;de;;basic\nk3;mia@example.com;FR;vip|beta;pro\n")

    page.get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="Import contacts from a CSV").click()
    page.get_by_label("CSV file").set_input_files(str(bad))
    page.get_by_role("button", name="Upload and map columns").click()
    expect(page.locator("#import-check")).to_contain_text("1 of 2 rows have problems")
    expect(page.locator("#import-check")).to_contain_text("must be a valid email address")
    expect(page.get_by_role("button", name="Import 2 contacts")).to_have_count(0)
    assert not Contact.objects.filter(workspace=shop).exists()

    page.goto(f"{live_server.url}/contacts/import/")
    page.get_by_label("CSV file").set_input_files(str(good))
    page.get_by_role("button", name="Upload and map columns").click()
    expect(page.get_by_label("Customer ID")).to_have_value("external_id")
    page.get_by_label("Plan").select_option("attribute:text")  # a custom attribute, checked again at once
    expect(page.locator("#import-check")).to_contain_text("All 3 rows are valid")
    expect(page.locator("#import-check")).to_contain_text("Plan=pro")
    page.screenshot(path=str(screenshots / "import.png"), full_page=True)
    page.get_by_role("button", name="Import 3 contacts").click()
    expect(page.get_by_role("heading", name="Import done")).to_be_visible()
    expect(page.locator("main")).to_contain_text("3 contacts created")
    mia = Contact.objects.get(workspace=shop, external_id="k3")
    assert mia.attributes == {"Plan": "pro"} and sorted(mia.tags.values_list("name", flat=True)) == ["beta", "vip"]
    assert Contact.objects.get(workspace=shop, external_id="k2").country == "DE"


def test_screenshots_of_the_gallery_and_a_phone_sized_builder(shop, live_server, page: Page, screenshots):
    load_shop(shop)
    make_user(shop, "pia", "editor")
    sign_in(page, live_server, "pia")
    page.goto(f"{live_server.url}/segments/new/")
    page.get_by_label("Search templates").fill("cart")
    expect(page.get_by_role("link", name="Cart abandoners (48 hours)")).to_be_visible()
    expect(page.get_by_role("link", name="RFM champions")).to_be_hidden()
    page.get_by_label("Search templates").fill("")
    page.screenshot(path=str(screenshots / "templates.png"), full_page=True)
    page.get_by_role("link", name="Producer up-sell: Acme buyers").click()
    expect(page.locator("#preview .count")).to_have_attribute(
        "data-count", str(sum(acme_spend_within(p, 181) > 300 for p in PEOPLE)))
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshots / "builder-phone.png"), full_page=True)


def test_the_segment_list_with_trends_statuses_and_search(shop, live_server, page: Page, screenshots):
    load_shop(shop)
    now = timezone.now()
    rules = {
        "Acme buyers": {"match": "all", "conditions": [{"type": "orders", "filters": [
            {"field": "product.producer", "op": "eq", "value": "Acme"}], "measure": "count", "op": "gte", "value": 1}]},
        "Opened an email this week": {"match": "all", "conditions": [{"type": "event", "event": "email_open",
                                      "window": {"last": 7, "unit": "days"}, "measure": "count", "op": "gte",
                                      "value": 1}]},
        "VIP customers": {"match": "all", "conditions": [{"type": "tag", "op": "has_any", "value": ["vip"]}]},
    }
    for index, (name, definition) in enumerate(rules.items()):
        segment = Segment.objects.create(workspace=shop, name=name, definition=definition, refresh_minutes=60)
        # An earlier history, so that the list has trend lines to draw.
        SegmentSnapshot.objects.bulk_create([
            SegmentSnapshot(segment=segment, computed_at=now - timedelta(hours=24 - hour),
                            size=3 + (hour * (index + 1)) % 7, entered=1, exited=1, duration_ms=12, trigger="schedule")
            for hour in range(24)
        ])
        recompute_membership(segment_id=segment.pk, trigger="schedule")
    Segment.objects.create(workspace=shop, name="Lapsed big spenders", refresh_minutes=60, status="failed",
                           last_error="RecomputeTimeout: recompute took longer than SEGMENT_RECOMPUTE_TIMEOUT_S=600s",
                           definition={"match": "all", "conditions": []})
    make_user(shop, "lou", "editor")
    sign_in(page, live_server, "lou")

    rows = page.locator("table.segments tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator("svg.sparkline")).to_have_count(3)
    expect(rows.filter(has_text="Lapsed big spenders")).to_contain_text("failed")
    expect(rows.filter(has_text="VIP customers")).to_contain_text("who are tagged vip")
    page.screenshot(path=str(screenshots / "segments.png"), full_page=True)

    page.get_by_label("Search").fill("vip")
    expect(rows).to_have_count(1)
    page.get_by_label("Search").fill("")
    page.get_by_label("Sort by").select_option("-size")
    expect(rows.first).to_contain_text("Acme buyers")
