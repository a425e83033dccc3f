"""CSV import: reading, mapping, checking every row with the ingest services, all-or-nothing import, pages."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts import csv_import
from contacts.csv_import import CsvError, guess_mapping, plan_import, read_csv, run_import
from contacts.models import Contact, Order, Product
from tests.web.conftest import signed_in

CONTACTS_CSV = (
    b"Customer ID;E-mail;First name;Country;Tags;Plan;Score\n"
    b"u1;ada@example.com;Ada;pl;vip|newsletter;pro;7\n"
    b"u2;bob@example.com;Bob;DE;;basic;\n"
)


def test_read_csv_detects_the_delimiter_and_strips_a_bom():
    table = read_csv("\ufeffid,email\nu1,a@example.com\n\n".encode())
    assert table.headers == ["id", "email"] and table.rows == [["u1", "a@example.com"]]
    assert read_csv(b"id\temail\nu1\ta@example.com\n").rows == [["u1", "a@example.com"]]
    assert read_csv("id;name\nu1;Żaneta\n".encode("cp1252", errors="ignore")).rows[0][0] == "u1"


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"id,email\n", "no rows"),
    (b"id,id\nu1,u2\n", "Two columns are named"),
    (b"\x00\x01\x02", "binary"),
])
def test_unreadable_files_are_refused_with_a_reason(data, message):
    with pytest.raises(CsvError, match=message):
        read_csv(data)


def test_too_many_rows_are_refused():
    with pytest.raises(CsvError, match="more than 2 rows"):
        read_csv(b"id\n1\n2\n3\n", max_rows=2)


def test_guess_mapping_by_column_names():
    assert guess_mapping("contacts", ["Customer ID", "E-mail", "First name", "Country", "Tags", "Plan", "Score"]) == {
        "Customer ID": "external_id", "E-mail": "email", "First name": "first_name", "Country": "country",
        "Tags": "tags", "Plan": "", "Score": ""}
    assert guess_mapping("orders", ["Order ID", "Customer", "Date", "SKU", "Qty", "Price", "Brand"]) == {
        "Order ID": "external_id", "Customer": "contact", "Date": "ordered_at", "SKU": "sku", "Qty": "quantity",
        "Price": "unit_price", "Brand": "producer"}


def test_the_mapping_itself_is_checked():
    table = read_csv(CONTACTS_CSV)
    mapping = {"Customer ID": "", "E-mail": "email", "First name": "email"}
    problems = plan_import("contacts", table, mapping).mapping_errors
    assert "Email is chosen for several columns: E-mail, First name." in problems
    assert "Choose the column that holds the contact id (required)." in problems


def contacts_mapping() -> dict[str, str]:
    mapping = guess_mapping("contacts", read_csv(CONTACTS_CSV).headers)
    mapping.update(Plan=csv_import.ATTRIBUTE_TEXT, Score=csv_import.ATTRIBUTE_NUMBER)
    return mapping


def test_a_contacts_plan_holds_the_ingest_records():
    plan = plan_import("contacts", read_csv(CONTACTS_CSV), contacts_mapping())
    assert plan.ok
    assert plan.records == [
        {"external_id": "u1", "email": "ada@example.com", "first_name": "Ada", "country": "pl",
         "tags": ["vip", "newsletter"], "attributes": {"Plan": "pro", "Score": 7}},
        # Empty cells are left out: an import never erases what a contact has.
        {"external_id": "u2", "email": "bob@example.com", "first_name": "Bob", "country": "DE",
         "attributes": {"Plan": "basic"}},
    ]


def test_every_bad_row_is_reported_by_line_and_column():
    data = (b"id,email,country,birthday,score\n"
            b"u1,ada@example.com,PL,1990-01-02,1\n"
            b"u2,not-an-email,XX,1990-13-01,many\n"
            b",c@example.com,,,\n")
    mapping = {"id": "external_id", "email": "email", "country": "country", "birthday": "birth_date",
               "score": csv_import.ATTRIBUTE_NUMBER}
    plan = plan_import("contacts", read_csv(data), mapping)
    assert not plan.ok and plan.bad_lines == 2
    found = {(e.line, e.column) for e in plan.row_errors}
    assert found == {(3, "email"), (3, "country"), (3, "birthday"), (3, "score"), (4, "id")}


def test_import_writes_contacts_through_the_ingest_service(workspace):
    plan = plan_import("contacts", read_csv(CONTACTS_CSV), contacts_mapping())
    outcome = run_import(workspace=workspace, plan=plan)
    assert (outcome.created, outcome.updated) == (2, 0)
    ada = Contact.objects.get(workspace=workspace, external_id="u1")
    assert ada.country == "PL"  # normalised by the ingest parser
    assert ada.attributes == {"Plan": "pro", "Score": 7}
    assert sorted(ada.tags.values_list("name", flat=True)) == ["newsletter", "vip"]
    assert ada.stats.orders_count == 0  # the figures are kept by ingest too


ORDERS_CSV = (
    b"order_id,customer_id,order_date,sku,qty,price,product_name,brand\n"
    b"o-1,u1,2024-05-01,SKU-1,2,9.50,Mug,Acme\n"
    b"o-1,u1,2024-05-01,SKU-2,1,20,Plate,Acme\n"
    b"o-2,u9,2024-05-03T10:00:00Z,SKU-1,1,9.50,Mug,Acme\n"
)


def test_orders_group_their_lines_and_upsert_products_first(workspace):
    table = read_csv(ORDERS_CSV)
    plan = plan_import("orders", table, guess_mapping("orders", table.headers))
    assert plan.ok, plan.row_errors
    assert [order["external_id"] for order in plan.records] == ["o-1", "o-2"]
    assert plan.records[0]["items"] == [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.50"},
                                        {"sku": "SKU-2", "quantity": 1, "unit_price": "20"}]
    outcome = run_import(workspace=workspace, plan=plan)
    assert (outcome.created, outcome.products) == (2, 2)
    first = Order.objects.get(workspace=workspace, external_id="o-1")
    assert first.total == Decimal("39.00") and first.items.count() == 2
    assert Product.objects.get(workspace=workspace, sku="SKU-2").producer == "Acme"
    assert Contact.objects.filter(workspace=workspace, external_id="u9").exists()  # unknown contacts come bare


def test_order_errors_point_at_the_line_of_the_bad_order_line():
    data = (b"order_id,customer_id,order_date,sku,qty,price\n"
            b"o-1,u1,2024-05-01,SKU-1,2,9.50\n"
            b"o-1,u1,2024-05-01,SKU-2,0,abc\n"
            b"o-2,u2,yesterday,SKU-1,1,1\n"
            b"o-3,u3,2024-05-01,,3,\n")
    table = read_csv(data)
    plan = plan_import("orders", table, guess_mapping("orders", table.headers))
    found = {(e.line, e.column) for e in plan.row_errors}
    assert found == {(3, "qty"), (3, "price"), (4, "order_date"), (5, "sku")}


def test_a_refused_import_rolls_everything_back(workspace, monkeypatch):
    plan = plan_import("contacts", read_csv(CONTACTS_CSV), contacts_mapping())
    monkeypatch.setattr(csv_import, "BATCH", 1)  # two service calls: the second one is refused
    calls = []
    real = csv_import.ingest_contacts

    def second_call_refused(*, workspace, records):
        calls.append(records)
        result = real(workspace=workspace, records=records)
        if len(calls) == 2:
            result.errors = [{"index": 0, "path": "contacts[0]", "message": "refused"}]
        return result

    monkeypatch.setattr(csv_import, "ingest_contacts", second_call_refused)
    with pytest.raises(csv_import.ImportRefused):
        run_import(workspace=workspace, plan=plan)
    assert len(calls) == 2 and not Contact.objects.filter(workspace=workspace).exists()


# ------------------------------------------------------------------------------------------ pages


@pytest.fixture(autouse=True)
def uploads_in_tmp(settings, tmp_path):
    """Uploaded files wait for their import under VAR_DIR/imports: a temporary one here."""
    settings.VAR_DIR = tmp_path


def upload(client, data: bytes, kind: str = "contacts"):
    return client.post("/contacts/import/", {"kind": kind, "file": SimpleUploadedFile("people.csv", data)})


def test_upload_map_check_and_import_through_the_pages(editor, workspace):
    response = upload(editor, CONTACTS_CSV)
    assert response.status_code == 302
    map_url = response["Location"]
    page = editor.get(map_url).content.decode()
    assert 'id="map-1"' in page and '<option value="email" selected>' in page
    assert "All 2 rows are valid" in page

    form = {f"map-{i}": key for i, key in enumerate(contacts_mapping().values())}
    check = editor.post(map_url, form, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="import-check").content.decode()
    assert check.lstrip().startswith('<section class="card" id="import-check"') and "Import 2 contacts" in check
    assert not Contact.objects.filter(workspace=workspace).exists()  # checking writes nothing

    done = editor.post(map_url, {**form, "action": "import"}).content.decode()
    assert "2 rows of “people.csv” imported" in done and "2 contacts created" in done
    assert Contact.objects.get(workspace=workspace, external_id="u1").attributes["Score"] == 7
    assert editor.get(map_url).status_code == 404  # the upload is gone after the import


def test_a_file_with_bad_rows_shows_them_and_imports_nothing(editor, workspace):
    data = b"id,email\nu1,ada@example.com\nu2,nope\n"
    map_url = upload(editor, data)["Location"]
    page = editor.get(map_url).content.decode()
    assert "1 of 2 rows have problems" in page and "must be a valid email address" in page
    assert "Import 2" not in page
    page = editor.post(map_url, {"map-0": "external_id", "map-1": "email", "action": "import"}).content.decode()
    assert "Nothing was imported" in page
    assert not Contact.objects.filter(workspace=workspace).exists()


def test_an_unreadable_upload_is_refused_on_the_first_step(editor):
    response = upload(editor, b"")
    assert response.status_code == 400 and "The file is empty." in response.content.decode()


def test_an_upload_belongs_to_the_session_that_uploaded_it(editor, workspace, tmp_path):
    map_url = upload(editor, CONTACTS_CSV)["Location"]
    assert len(list((tmp_path / "imports").glob("*.csv"))) == 1
    colleague = signed_in(workspace, "editor", "another-editor")
    assert colleague.get(map_url).status_code == 404
