"""Merge fields: the contact's own fields only, safe defaults, HTML escaped, unknown fields refused on save."""

from __future__ import annotations

from campaigns.delivery import Content, build_email
from campaigns.templating import contact_context, render, render_subject, template_errors
from tests.factories import make_contact


def test_fields_and_attributes_merge_and_missing_values_render_empty(workspace):
    ann = make_contact(workspace, first_name="Ann", city=None, attributes={"plan": "pro"})
    context = contact_context(ann)

    assert (
        render(
            "{{ first_name }} / {{ city }} / {{ attributes.plan }} / {{ attributes.nope }}", context, html_body=False
        )
        == "Ann /  / pro / "
    )
    assert render_subject("Hi {{ city|default:'there' }}", context) == "Hi there"


def test_html_bodies_escape_merged_values_and_subjects_do_not(workspace):
    mallory = make_contact(workspace, first_name='<script>alert("x")</script> & co')
    context = contact_context(mallory)

    assert render("<p>{{ first_name }}</p>", context, html_body=True) == (
        "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co</p>"
    )
    assert render_subject("{{ first_name }}", context) == '<script>alert("x")</script> & co'


def test_a_merged_newline_cannot_start_a_new_header(workspace):
    contact = make_contact(workspace, first_name="Ann\nBcc: everyone@example.com")
    assert render_subject("Hi {{ first_name }}", contact_context(contact)) == "Hi Ann Bcc: everyone@example.com"


def test_nothing_but_the_contacts_fields_is_reachable(workspace):
    contact = make_contact(workspace, first_name="Ann")
    context = contact_context(contact)

    # No model instance in the context: no workspace, no related rows, no methods.
    assert all(isinstance(value, (str, dict)) for value in context.values())
    assert render("{{ workspace.name }}{{ contact.workspace }}{{ settings.SECRET_KEY }}", context, html_body=True) == ""
    assert template_errors("{{ settings.SECRET_KEY }}", html_body=True) == [
        "unknown merge field(s): settings; use external_id, email, first_name, last_name, phone, country, city, "
        "gender, birth_date, attributes"
    ]


def test_tags_that_reach_files_or_code_are_refused():
    assert template_errors('{% include "base.html" %}', html_body=True) == [
        "tags not allowed in a message: IncludeNode"
    ]
    assert template_errors("{% load static %}", html_body=True)[0].startswith("template error: 'static' is not a")
    assert template_errors("{% debug %}", html_body=False) == ["tags not allowed in a message: DebugNode"]


def test_loops_conditions_and_filters_are_fine():
    text = (
        "{% if first_name %}Hi {{ first_name|title }}{% else %}Hello{% endif %}"
        "{% for tag in attributes.tags %}{{ tag }}{{ forloop.counter }}{% endfor %}"
    )
    assert template_errors(text, html_body=True) == []
    assert template_errors("{% if %}", html_body=True) == ["template error: Unexpected end of expression in if tag."]


def test_the_email_has_a_text_part_derived_from_the_html_and_carries_the_tracking_key(workspace):
    contact = make_contact(workspace, email="ann@example.com", first_name="Ann")
    content = Content(
        subject="Hi {{ first_name }}", body="<h1>Sale</h1><p>Hi {{ first_name }} &amp; co</p>", body_text=""
    )

    email = build_email(content, contact, from_email="", tracking_key="campaign-5", row_id=17)

    assert email.subject == "Hi Ann"
    assert email.to == ["ann@example.com"]
    assert email.body == "Sale\nHi Ann & co"
    assert email.alternatives[0][0] == "<h1>Sale</h1><p>Hi Ann &amp; co</p>"
    assert email.extra_headers == {"X-Segments-Campaign": "campaign-5", "X-Segments-Message": "campaign-5-17"}
