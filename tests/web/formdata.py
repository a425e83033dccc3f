"""What a browser posts for a builder page: its successful controls, read from the rendered HTML.

Used by the round-trip tests and by `bench.builder`, so both post exactly what the page would.
"""

from __future__ import annotations

from html.parser import HTMLParser

from django.http import QueryDict
from django.template.loader import render_to_string

from segments_app.builder import builder_view
from segments_app.catalog import Catalog


class _Controls(HTMLParser):
    """Inputs with their values, the selected option of each select (else its first), checked boxes."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self.select: str | None = None
        self.first_option: tuple[str, str] | None = None
        self.chosen = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.pairs.append((a["name"], a.get("value") or ""))
        elif tag == "select":
            self.select, self.first_option, self.chosen = a.get("name"), None, False
        elif tag == "option" and self.select:
            if self.first_option is None:
                self.first_option = (self.select, a.get("value", ""))
            if "selected" in a:
                self.pairs.append((self.select, a.get("value", "")))
                self.chosen = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self.select:
            if not self.chosen and self.first_option:
                self.pairs.append(self.first_option)
            self.select = None


def builder_form(definition: dict, *, catalog: Catalog, segments=()) -> QueryDict:
    """The builder form a page rendered for `definition` would post."""
    html = render_to_string(
        "segments/_builder_tree.html", {"root": builder_view(definition, catalog=catalog, segments=segments)}
    )
    collector = _Controls()
    collector.feed(html)
    form = QueryDict(mutable=True)
    for name, value in collector.pairs:
        form.appendlist(name, value)
    return form
