"""Sign-in pages, the workspace switcher, and the marketer's contact pages: list, contact, CSV import."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import CharField, F, Q, Value
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts import csv_import
from contacts.models import Contact, Event, Order
from contacts.selectors import contact_detail as contact_detail_selector
from contacts.selectors import contact_list as contact_list_selector
from contacts.web_access import switch_workspace, workspace_view
from segments_app import catalog as cat
from segments_app.definition import DefinitionError
from segments_app.explain import explain_contact
from segments_app.models import Segment
from segments_app.web.views import is_fragment

CONTACTS_PER_PAGE = 25
TIMELINE_PER_PAGE = 15


@login_required
@require_POST
def switch_workspace_view(request: HttpRequest) -> HttpResponse:
    try:
        workspace_id = int(request.POST.get("workspace", ""))
    except ValueError:
        workspace_id = 0
    if not switch_workspace(request, workspace_id):
        messages.error(request, "You are not a member of that workspace.")
    next_url = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "/"
    return redirect(next_url)


# ------------------------------------------------------------------------------------------ contacts


@workspace_view()
@require_GET
def contact_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:200].replace("\x00", "")
    contacts = contact_list_selector(workspace=request.workspace).select_related("stats")
    if search:
        contacts = contacts.filter(
            Q(email__icontains=search) | Q(external_id=search) | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
        )
    page = Paginator(contacts, CONTACTS_PER_PAGE).get_page(request.GET.get("page"))
    query = f"q={search}" if search else ""
    context = {"page": page, "search": search, "query": query,
               "has_contacts": bool(page.object_list) or Contact.objects.filter(workspace=request.workspace).exists()}
    template = "contacts/_contact_table.html" if is_fragment(request, "contact-table") else "contacts/list.html"
    return render(request, template, context)


def _contact(request: HttpRequest, contact_id: int) -> Contact:
    external_id = (
        Contact.objects.filter(workspace=request.workspace, pk=contact_id).values_list("external_id", flat=True).first()
    )
    contact = contact_detail_selector(workspace=request.workspace, external_id=external_id) if external_id else None
    if contact is None:
        raise Http404("No such contact in this workspace.")
    return contact


@workspace_view()
@require_GET
def contact_detail(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    timeline = _timeline(request, contact)
    if is_fragment(request, "timeline"):
        return render(request, "contacts/_timeline.html", timeline)
    stats = contact.stats
    context = {
        "contact": contact,
        "details": [(f.label, getattr(contact, f.key)) for f in cat.CONTACT_FIELDS],
        "attributes": sorted((contact.attributes or {}).items()),
        "figures": [(f.label, getattr(stats, f.key), f.description) for f in cat.COMPUTED_FIELDS],
        "currency": request.workspace.currency,
        "segments": Segment.objects.filter(workspace=request.workspace).order_by("name").values_list("pk", "name"),
        "member_of": {entry["id"] for entry in contact.current_segments},
        **timeline,
    }
    return render(request, "contacts/detail.html", context)


def _timeline(request: HttpRequest, contact: Contact) -> dict:
    """Orders and events of the contact, newest first, one page of them (a UNION ordered by time)."""
    orders = Order.objects.filter(contact=contact).annotate(
        kind=Value("order", output_field=CharField()), at=F("ordered_at")
    ).values_list("pk", "kind", "at")
    events = Event.objects.filter(contact=contact).annotate(
        kind=Value("event", output_field=CharField()), at=F("occurred_at")
    ).values_list("pk", "kind", "at")
    entries = orders.union(events, all=True).order_by("-at", "-kind", "-pk")
    page = Paginator(entries, TIMELINE_PER_PAGE).get_page(request.GET.get("page"))
    order_ids = [pk for pk, kind, _ in page.object_list if kind == "order"]
    event_ids = [pk for pk, kind, _ in page.object_list if kind == "event"]
    loaded = {("order", o.pk): o for o in Order.objects.filter(pk__in=order_ids).prefetch_related("items__product")}
    loaded.update({("event", e.pk): e for e in Event.objects.filter(pk__in=event_ids)})
    items = [{"kind": kind, "at": at, "row": loaded[(kind, pk)]} for pk, kind, at in page.object_list]
    return {"contact": contact, "timeline_page": page, "timeline": items}


@workspace_view()
@require_GET
def contact_explain(request: HttpRequest, contact_id: int) -> HttpResponse:
    """Why the contact is (or is not) in a segment, condition by condition (an htmx fragment)."""
    contact = _contact(request, contact_id)
    segment_id = request.GET.get("segment", "")
    segment = Segment.objects.filter(workspace=request.workspace, pk=int(segment_id)).first() if (
        segment_id.isdigit()) else None
    if segment is None:
        return render(request, "contacts/_explain.html", {"contact": contact, "explanation": None})
    try:
        explanation = explain_contact(workspace=request.workspace, segment=segment, contact=contact)
        error = ""
    except DefinitionError as exc:
        explanation, error = None, str(exc)
    return render(request, "contacts/_explain.html",
                  {"contact": contact, "segment": segment, "explanation": explanation, "error": error})


# ------------------------------------------------------------------------------------------ CSV import

UPLOADS_KEY = "csv_imports"
UPLOAD_TTL_S = 24 * 3600


def _upload_dir() -> Path:
    directory = Path(settings.VAR_DIR) / "imports"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _prune_uploads(directory: Path) -> None:
    limit = time.time() - UPLOAD_TTL_S
    for path in directory.glob("*.csv"):
        if path.stat().st_mtime < limit:
            path.unlink(missing_ok=True)


@workspace_view(edit=True)
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    """Step 1: choose what to import and upload the file; it is kept until the import (or a day)."""
    error = ""
    kind = request.POST.get("kind", request.GET.get("kind", "contacts"))
    if kind not in csv_import.TARGETS:
        kind = "contacts"
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = "Choose a CSV file to upload."
        else:
            data = upload.read()
            try:
                csv_import.read_csv(data)
            except csv_import.CsvError as exc:
                error = str(exc)
            else:
                directory = _upload_dir()
                _prune_uploads(directory)
                token = secrets.token_urlsafe(16)
                (directory / f"{token}.csv").write_bytes(data)
                uploads = request.session.get(UPLOADS_KEY, {})
                uploads[token] = {"workspace": request.workspace.pk, "kind": kind, "filename": upload.name[:200]}
                request.session[UPLOADS_KEY] = uploads
                return redirect("contact-import-map", token=token)
    context = {"kind": kind, "kinds": csv_import.KIND_LABELS, "error": error,
               "targets": csv_import.TARGETS[kind], "all_targets": csv_import.TARGETS}
    return render(request, "contacts/import.html", context, status=400 if error else 200)


@workspace_view(edit=True)
@require_http_methods(["GET", "POST"])
def import_map(request: HttpRequest, token: str) -> HttpResponse:
    """Step 2: map columns to fields and see every row's problems; step 3: import (POST `import`)."""
    upload = request.session.get(UPLOADS_KEY, {}).get(token)
    path = _upload_dir() / f"{token}.csv"
    if upload is None or upload["workspace"] != request.workspace.pk or not path.exists():
        raise Http404("This upload has expired: upload the file again.")
    kind = upload["kind"]
    table = csv_import.read_csv(path.read_bytes())
    if request.method == "POST":
        mapping = {header: request.POST.get(f"map-{index}", "") for index, header in enumerate(table.headers)}
    else:
        mapping = csv_import.guess_mapping(kind, table.headers)
    plan = csv_import.plan_import(kind, table, mapping)
    if request.method == "POST" and request.POST.get("action") == "import":
        if not plan.ok:
            messages.error(request, "Nothing was imported: fix the problems listed below first.")
        else:
            try:
                outcome = csv_import.run_import(workspace=request.workspace, plan=plan)
            except csv_import.ImportRefused as exc:
                messages.error(request, f"Nothing was imported: {len(exc.errors)} rows were refused.")
            else:
                path.unlink(missing_ok=True)
                uploads = request.session.get(UPLOADS_KEY, {})
                uploads.pop(token, None)
                request.session[UPLOADS_KEY] = uploads
                return render(request, "contacts/import_done.html",
                              {"outcome": outcome, "kind": kind, "upload": upload, "plan": plan})
    columns = [
        {"index": index, "header": header, "target": mapping.get(header, ""),
         "samples": [row[index] for row in table.rows[:3]]}
        for index, header in enumerate(table.headers)
    ]
    context = {
        "token": token, "upload": upload, "kind": kind, "kind_label": csv_import.KIND_LABELS[kind],
        "columns": columns, "targets": csv_import.TARGETS[kind], "plan": plan,
        "errors_shown": plan.row_errors[:200], "preview_rows": _preview_rows(plan)[:10],
    }
    template = "contacts/_import_check.html" if is_fragment(request, "import-check") else "contacts/import_map.html"
    return render(request, template, context)


def _preview_rows(plan: csv_import.ImportPlan) -> list[dict]:
    """The first records as they will be sent to the ingest service, flattened for a table."""
    rows = []
    for record in plan.records[:10]:
        flat = {}
        for key, value in record.items():
            if key == "items":
                flat[key] = "; ".join(
                    f"{i.get('quantity', 1)} × {i['sku']} @ {i.get('unit_price', '?')}" for i in value
                )
            elif isinstance(value, dict):
                flat[key] = ", ".join(f"{k}={v}" for k, v in value.items())
            elif isinstance(value, list):
                flat[key] = ", ".join(map(str, value))
            else:
                flat[key] = value
        rows.append(flat)
    return rows
