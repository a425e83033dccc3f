"""Segment pages: the list, the builder (wizard) with its live preview, and the segment page.

Thin views: parse the request, call one service or selector, render. One view serves a page and, for an
htmx request aimed at one of its fragments (the `HX-Target` header), only that fragment.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts.web_access import workspace_view
from segments_app import builder, dispatch, membership, services, templates_library
from segments_app.catalog import ATTRIBUTE_PREFIX, Catalog
from segments_app.definition import DefinitionError, validate_definition
from segments_app.filters import MemberFilter
from segments_app.forms import SegmentMetaForm
from segments_app.guards import PreviewTimeout, statement_timeout
from segments_app.models import Segment, SegmentSnapshot
from segments_app.selectors import segment_contacts, segment_summaries
from segments_app.summary import summarize
from segments_app.web import selectors, suggestions

MEMBERS_PER_PAGE = 25
SAMPLE_SIZE = 10


def is_fragment(request: HttpRequest, target: str) -> bool:
    """Whether an htmx request asks for the fragment with this id (and not a whole page, e.g. history)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == target


def _segment(request: HttpRequest, segment_id: int) -> Segment:
    segment = Segment.objects.filter(workspace=request.workspace, pk=segment_id).first()
    if segment is None:
        raise Http404("No such segment in this workspace.")
    return segment


# ------------------------------------------------------------------------------------------ list


@workspace_view()
@require_GET
def segment_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:200].replace("\x00", "")
    sort = request.GET.get("sort", selectors.DEFAULT_SORT)
    if sort not in selectors.SORTS:
        sort = selectors.DEFAULT_SORT
    rows = selectors.segment_rows(workspace=request.workspace, search=search, sort=sort)
    summaries = segment_summaries(
        workspace=request.workspace, segments=[row.segment for row in rows], catalog=_catalog(request)
    )
    for row in rows:
        row.summary = summaries.get(row.segment.pk, "")
    context = {
        "rows": rows,
        "search": search,
        "sort": sort,
        "sort_options": selectors.SORT_LABELS,
        "any_computing": any(row.segment.status == Segment.Status.COMPUTING for row in rows),
        "has_segments": bool(rows) or Segment.objects.filter(workspace=request.workspace).exists(),
    }
    template = "segments/_segment_table.html" if is_fragment(request, "segment-table") else "segments/list.html"
    return render(request, template, context)


# ------------------------------------------------------------------------------------------ builder


@workspace_view(edit=True)
@require_GET
def segment_new(request: HttpRequest) -> HttpResponse:
    """Start a segment: from blank or from a template of the library (the gallery)."""
    library = templates_library.templates()
    categories: dict[str, list] = {}
    for template in library:
        categories.setdefault(template["category"], []).append(template)
    return render(request, "segments/new.html", {"categories": categories})


@workspace_view(edit=True)
@require_http_methods(["GET", "POST"])
def segment_create(request: HttpRequest) -> HttpResponse:
    """The builder for a new segment (`?template=<key>` starts from a template); POST saves it."""
    if request.method == "POST":
        return _save(request, segment=None)
    definition = builder.BLANK
    initial = {"refresh_minutes": 60}
    key = request.GET.get("template")
    if key:
        template = templates_library.get_template(key)
        if template is None:
            raise Http404("No such template.")
        definition = template["definition"]
        initial.update(name=template["name"], description=template["description"])
    return _builder_page(request, definition=definition, form=SegmentMetaForm(initial=initial), segment=None)


@workspace_view(edit=True)
@require_http_methods(["GET", "POST"])
def segment_edit(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = _segment(request, segment_id)
    if request.method == "POST":
        return _save(request, segment=segment)
    form = SegmentMetaForm(initial=_initial(segment))
    return _builder_page(request, definition=segment.definition, form=form, segment=segment)


def _initial(segment: Segment) -> dict:
    return {"name": segment.name, "description": segment.description, "refresh_minutes": segment.refresh_minutes}


def _save(request: HttpRequest, *, segment: Segment | None) -> HttpResponse:
    # Saved exactly as posted (no normalising): what is stored is what the validator accepted.
    definition = builder.definition_from_form(request.POST, catalog=_catalog(request))
    form = SegmentMetaForm(request.POST, initial=_initial(segment) if segment else {})
    if not form.is_valid():
        return _builder_page(request, definition=definition, form=form, segment=segment, status=400)
    fields = {**form.cleaned_data, "definition": definition, "unique_name": True}
    try:
        if segment is None:
            saved = services.create_segment(workspace=request.workspace, created_by=request.user, **fields)
        else:
            saved = services.update_segment(segment=segment, **fields)
    except services.SegmentInvalid as exc:
        # Errors of the form's own fields go next to them; the rest are the definition's, at their paths.
        for error in exc.errors:
            if error["path"] in form.fields:
                form.add_error(error["path"], error["message"])
        return _builder_page(
            request, definition=definition, form=form, segment=segment, errors=definition_errors(exc.errors),
            status=400,
        )
    messages.success(request, f"Segment “{saved.name}” saved: its members are computed and kept current.")
    return redirect("segment-detail", segment_id=saved.pk)


def _catalog(request: HttpRequest, *, fresh: bool = False) -> Catalog:
    """The workspace's field catalog (cached per process); rebuilt when the page or the form needs it.

    A builder page loads it fresh, so that a custom attribute that appeared a minute ago is in the picker;
    a posted form whose custom attribute the cached catalog does not know yet rebuilds it too.
    """
    catalog = membership.workspace_catalog(request.workspace, fresh=fresh)
    if not fresh and request.method == "POST":
        fields = {value for key, value in request.POST.items() if key.endswith(".field")}
        if any(key.startswith(ATTRIBUTE_PREFIX) and catalog.field(key) is None for key in fields):
            catalog = membership.workspace_catalog(request.workspace, fresh=True)
    return catalog


def _editing_id(request: HttpRequest) -> int | None:
    """The segment being edited (a hidden input of the builder form), checked against the workspace."""
    raw = request.POST.get("segment_id", "")
    if not raw.isdigit():
        return None
    return _segment(request, int(raw)).pk


def _builder_page(
    request: HttpRequest,
    *,
    definition: dict,
    form: SegmentMetaForm,
    segment: Segment | None,
    errors: list[dict] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The builder page. The count is not computed here: the page asks for it as soon as it has loaded."""
    catalog = _catalog(request, fresh=request.method == "GET")
    segment_id = segment.pk if segment else None
    others = selectors.other_segments(workspace=request.workspace, exclude_id=segment_id)
    definition = builder.normalize(definition, catalog=catalog)
    if errors is None:
        errors = validate_definition(definition, workspace=request.workspace, segment_id=segment_id)
    context = {
        "form": form,
        "segment": segment,
        "root": builder.builder_view(definition, catalog=catalog, errors=errors, segments=others),
        "picker": builder.picker_groups(catalog, has_segments=bool(others)),
    }
    return render(request, "segments/builder.html", context, status=status)


@workspace_view(edit=True)
@require_POST
def builder_action(request: HttpRequest) -> HttpResponse:
    """One structural edit of the builder (add, remove, move, change a field...): the new builder fragment.

    Errors come from the API's validator, shown on their conditions. The count follows in its own request
    (the `refresh-preview` event), so the builder answers at once whatever the size of the workspace.
    """
    catalog = _catalog(request)
    segment_id = _editing_id(request)
    others = selectors.other_segments(workspace=request.workspace, exclude_id=segment_id)
    draft = builder.definition_from_form(request.POST, catalog=catalog)
    action, target, argument = builder.parse_action(request.POST.get("action", ""))
    try:
        draft = builder.apply_action(draft, action, target, argument, catalog=catalog, segments=others)
    except builder.BuilderActionError as exc:
        return HttpResponse(f"This change could not be made: {exc}. Reload the page.", status=400)
    definition = builder.normalize(draft, catalog=catalog)
    errors = validate_definition(definition, workspace=request.workspace, segment_id=segment_id)
    context = {
        "root": builder.builder_view(definition, catalog=catalog, errors=errors, segments=others),
        "picker": builder.picker_groups(catalog, has_segments=bool(others)),
    }
    response = render(request, "segments/_builder_tree.html", context)
    response["HX-Trigger-After-Settle"] = "refresh-preview"
    return response


@workspace_view(edit=True)
@require_POST
def builder_preview(request: HttpRequest) -> HttpResponse:
    """The live count, sample and summary for the form as it is now, with every condition's errors (oob)."""
    definition = builder.definition_from_form(request.POST, catalog=_catalog(request))
    preview = _preview(request, definition, segment_id=_editing_id(request))
    slots = builder.errors_by_node(preview["errors"])
    error_slots = [
        {"id": builder.dom_id(path, "err"), "errors": slots.get(path, [])} for path in builder.node_paths(definition)
    ]
    return render(request, "segments/_preview_response.html", {"preview": preview, "error_slots": error_slots})


def _preview(request: HttpRequest, definition: dict, *, segment_id: int | None) -> dict:
    """Count and summary of a definition, or its located errors (nothing is saved).

    The sample is not taken here: for an aggregate condition it costs as much as the count again, so the
    page asks for it once the count is shown (`builder_sample`).
    """
    result = {"errors": [], "count": None, "summary": "", "timeout": "", "elapsed_ms": None}
    try:
        preview = services.preview_segment(
            workspace=request.workspace, definition=definition, segment_id=segment_id, sample_size=0
        )
    except services.SegmentInvalid as exc:
        result["errors"] = definition_errors(exc.errors)
        return result
    except PreviewTimeout as exc:
        result["timeout"] = str(exc)
        return result
    result.update(count=preview.count, summary=preview.summary, elapsed_ms=preview.elapsed_ms)
    return result


@workspace_view(edit=True)
@require_POST
def builder_sample(request: HttpRequest) -> HttpResponse:
    """A few contacts matching the form as it is now (the preview's examples), under the preview timeout."""
    definition = builder.definition_from_form(request.POST, catalog=_catalog(request))
    try:
        with statement_timeout():
            contacts = segment_contacts(
                workspace=request.workspace, definition=definition, segment_id=_editing_id(request)
            )
            sample = list(contacts.order_by("pk")[:SAMPLE_SIZE])
    except (DefinitionError, PreviewTimeout):
        sample = None  # the count beside it already says what is wrong
    return render(request, "segments/_preview_sample.html", {"sample": sample})


def definition_errors(errors: list[dict]) -> list[dict]:
    """The service's errors located in the definition (`definition.conditions[0].op`), from its own root."""
    found = []
    for error in errors:
        path = error["path"]
        if path == "definition" or path.startswith("definition."):
            found.append({**error, "path": path.removeprefix("definition").lstrip(".")})
        elif path not in SegmentMetaForm.base_fields:
            found.append({**error, "path": ""})  # e.g. segment_id: shown on the whole definition
    return found


# ------------------------------------------------------------------------------------------ segment page


@workspace_view()
@require_GET
def segment_detail(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = _segment(request, segment_id)
    members = _members_context(request, segment)
    if is_fragment(request, "members"):
        return render(request, "segments/_members.html", members)
    history = _history_context(segment)
    context = {
        "segment": segment,
        "summary": summarize(segment.definition, workspace=request.workspace),
        "history": history,
        # While a recompute runs, the status panel polls and then reports the snapshot after this one.
        "polling": segment.status == Segment.Status.COMPUTING,
        "after": history["snapshots"][-1].pk if history["snapshots"] else 0,
        "overlap": selectors.overlap(segment=segment),
        **members,
    }
    return render(request, "segments/detail.html", context)


def _members_context(request: HttpRequest, segment: Segment) -> dict:
    members = MemberFilter(request.GET, queryset=selectors.stored_members(segment=segment))
    page = Paginator(members.qs, MEMBERS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    filtered = any(value for value in query.values())
    return {"segment": segment, "filter": members, "page": page, "query": query.urlencode(), "filtered": filtered}


def _history_context(segment: Segment) -> dict:
    snapshots = selectors.size_history(segment=segment)
    chart = {
        "labels": [timezone.localtime(s.computed_at).strftime("%Y-%m-%d %H:%M") for s in snapshots],
        "size": [s.size for s in snapshots],
        "entered": [s.entered for s in snapshots],
        "exited": [-s.exited for s in snapshots],
    }
    return {"snapshots": snapshots, "recent": list(reversed(snapshots))[:20], "chart": chart}


@workspace_view(edit=True)
@require_POST
def segment_refresh(request: HttpRequest, segment_id: int) -> HttpResponse:
    """Recompute now: mark it computing and enqueue the recompute; the status panel then polls."""
    segment = _segment(request, segment_id)
    last = SegmentSnapshot.objects.filter(segment=segment).order_by("-pk").values_list("pk", flat=True).first()
    if dispatch.claim_segment(segment, now=timezone.now()):
        membership.schedule_recompute(segment_id=segment.pk, trigger=membership.Trigger.MANUAL)
    return _status_response(request, segment.pk, after=last or 0)


@workspace_view()
@require_GET
def segment_status(request: HttpRequest, segment_id: int) -> HttpResponse:
    """The status panel; polled while a recompute runs. `?after=<snapshot id>`: report the newer snapshot."""
    segment = _segment(request, segment_id)
    after = request.GET.get("after", "")
    return _status_response(request, segment.pk, after=int(after) if after.isdigit() else None)


def _status_response(request: HttpRequest, segment_id: int, *, after: int | None) -> HttpResponse:
    segment = Segment.objects.get(pk=segment_id)  # fresh: the recompute may have just finished
    context = {"segment": segment, "after": after, "polling": segment.status == Segment.Status.COMPUTING}
    if after is not None and not context["polling"]:
        context["new_snapshot"] = (
            SegmentSnapshot.objects.filter(segment=segment, pk__gt=after).order_by("-pk").first()
        )
        if context["new_snapshot"] is not None:
            # Done: bring the chart, the members and the overlap up to date along with the status.
            context.update(
                refreshed=True,
                history=_history_context(segment),
                overlap=selectors.overlap(segment=segment),
                **_members_context(request, segment),
            )
    return render(request, "segments/_status_response.html", context)


@workspace_view(edit=True)
@require_POST
def segment_delete(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = _segment(request, segment_id)
    try:
        services.delete_segment(segment=segment)
    except services.SegmentInUse as exc:
        users = ", ".join(f"{user['name']}" for user in exc.used_by.get("segments", []) + exc.used_by.get(
            "campaigns", []))
        messages.error(request, f"“{segment.name}” cannot be deleted while it is used by: {users}.")
        return redirect("segment-detail", segment_id=segment.pk)
    messages.success(request, f"Segment “{segment.name}” deleted.")
    return redirect("segment-list")


@workspace_view()
@require_GET
def segment_members_csv(request: HttpRequest, segment_id: int) -> StreamingHttpResponse:
    """The filtered stored members as CSV, streamed row by row (an iterator: any size, constant memory)."""
    segment = _segment(request, segment_id)
    members = MemberFilter(request.GET, queryset=selectors.stored_members(segment=segment)).qs
    filename = f"segment-{segment.pk}-members-{timezone.now():%Y%m%d-%H%M}.csv"
    response = StreamingHttpResponse(_csv_rows(members), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


CSV_COLUMNS = ("external_id", "email", "first_name", "last_name", "country", "email_status", "since")


class _Echo:
    """A file-like object whose write returns the line, for csv.writer over a generator."""

    def write(self, value: str) -> str:
        return value


def _csv_rows(members) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for member in members.iterator(chunk_size=2000):
        contact = member.contact
        yield writer.writerow(
            [_csv_safe(getattr(contact, name)) for name in CSV_COLUMNS[:-1]] + [member.since.isoformat()]
        )


def _csv_safe(value) -> str:
    """Text that a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# ------------------------------------------------------------------------------------------ suggestions


@workspace_view()
@require_GET
def suggest(request: HttpRequest) -> HttpResponse:
    """`<option>`s for a builder `<datalist>`: values of `?kind=` in the workspace containing `?q=`."""
    kind = request.GET.get("kind", "")
    options = suggestions.suggest(workspace=request.workspace, kind=kind, query=request.GET.get("q", ""))
    if options is None:
        raise Http404("No suggestions of that kind.")
    return render(request, "segments/_suggestions.html", {"options": options})

