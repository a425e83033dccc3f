"""Merge fields: subject and bodies are Django templates rendered against one contact's fields only.

    >>> render_subject("Hi {{ first_name|default:'there' }}!", {"first_name": ""})
    'Hi there!'

Sandboxed on purpose, because the template text comes from marketers and the API:

- the context is a plain dict of the contact's own fields (`MERGE_FIELDS`, plus its custom
  `attributes.<key>`), never a model instance, so no method, relation or other row is reachable;
- a separate template engine with no loaders and no extra libraries: `{% include %}`, `{% extends %}`,
  `{% load %}` cannot reach files or code; only the tags in `ALLOWED_TAGS` are accepted when saving;
- a missing or unknown value renders as the empty string (`|default:"..."` gives a fallback), so a
  contact with no first name never breaks a send;
- the HTML body is autoescaped (a first name `<b>` arrives as `&lt;b&gt;`); subject and plain text are not
  (they are not HTML).

`template_errors` is what the API and the pages call on save: syntax errors, tags outside the allowed
set and unknown merge fields, each as a message.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

from django.template import Context, Engine, Template, TemplateSyntaxError
from django.template.base import Node, VariableNode
from django.utils.html import strip_tags

from contacts.models import Contact

MERGE_FIELDS: tuple[str, ...] = (
    "external_id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "country",
    "city",
    "gender",
    "birth_date",
    "attributes",
)
# Node classes of the default tags that only shape output; anything else (include, extends, load, url,
# debug, csrf_token, ...) is refused when a template is saved.
ALLOWED_TAGS = frozenset(
    {
        "TextNode",
        "VariableNode",
        "IfNode",
        "ForNode",
        "CommentNode",
        "FirstOfNode",
        "WithNode",
        "SpacelessNode",
        "AutoEscapeControlNode",
        "FilterNode",
        "CycleNode",
        "NowNode",
        "VerbatimNode",
        "TemplateLiteral",
        "IfChangedNode",
        "WidthRatioNode",
        "ResetCycleNode",
        "TemplateTagNode",
    }
)


def _engine(autoescape: bool) -> Engine:
    return Engine(dirs=[], app_dirs=False, loaders=[], libraries={}, autoescape=autoescape, string_if_invalid="")


_HTML_ENGINE = _engine(autoescape=True)
_TEXT_ENGINE = _engine(autoescape=False)


@lru_cache(maxsize=256)
def compile_template(text: str, *, html_body: bool) -> Template:
    """The compiled template (cached: one campaign renders the same text for every recipient)."""
    return (_HTML_ENGINE if html_body else _TEXT_ENGINE).from_string(text)


def contact_context(contact: Contact) -> dict[str, Any]:
    """The merge fields of one contact: its own fields as strings ('' when missing) and its attributes."""
    values: dict[str, Any] = {}
    for name in MERGE_FIELDS:
        value = getattr(contact, name, None)
        if name == "attributes":
            values[name] = value if isinstance(value, dict) else {}
        else:
            values[name] = "" if value is None else str(value)
    return values


def render(text: str, context: dict[str, Any], *, html_body: bool) -> str:
    if not text:
        return ""
    return compile_template(text, html_body=html_body).render(Context(context, autoescape=html_body))


def render_subject(text: str, context: dict[str, Any]) -> str:
    # A header value is one line: a newline from a merged value must not start a new header.
    return " ".join(render(text, context, html_body=False).split())


def render_text_from_html(rendered_html: str) -> str:
    """A plain-text alternative of an HTML body: tags dropped, entities decoded, blank lines squeezed."""
    text = html.unescape(strip_tags(re.sub(r"(?i)<br\s*/?>|</p>|</div>|</h\d>|</li>|</tr>", "\n", rendered_html)))
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def template_errors(text: str, *, html_body: bool) -> list[str]:
    """Why this template cannot be saved: syntax, refused tags, unknown merge fields. Empty when fine."""
    if not text:
        return []
    try:
        template = compile_template(text, html_body=html_body)
    except TemplateSyntaxError as exc:
        return [f"template error: {str(exc).strip().rstrip(':')}"]
    errors: list[str] = []
    nodes = template.nodelist.get_nodes_by_type(Node)
    refused = sorted({type(node).__name__ for node in nodes} - ALLOWED_TAGS)
    if refused:
        errors.append(f"tags not allowed in a message: {', '.join(refused)}")
    known = set(MERGE_FIELDS) | _names_bound_by_tags(nodes)
    unknown = sorted({name for node in nodes if isinstance(node, VariableNode) for name in _root_names(node)} - known)
    if unknown:
        errors.append(f"unknown merge field(s): {', '.join(unknown)}; use {', '.join(MERGE_FIELDS)}")
    return errors


def _names_bound_by_tags(nodes: list[Node]) -> set[str]:
    """Names a template defines itself: `{% for x in ... %}` (and forloop), `{% with y=... %}`."""
    names: set[str] = set()
    for node in nodes:
        if type(node).__name__ == "ForNode":
            names.update(node.loopvars)
            names.add("forloop")
        elif type(node).__name__ == "WithNode":
            names.update(node.extra_context)
    return names


def _root_names(node: VariableNode) -> list[str]:
    var = node.filter_expression.var
    lookups = getattr(var, "lookups", None)  # None for a literal such as {{ "text" }}
    return [lookups[0]] if lookups else []
