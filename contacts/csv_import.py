"""CSV import of contacts or orders: read the file, map its columns to fields, check every row, then import.

Plain functions around the ingest services (`contacts.ingest`), which do all the checking and writing:

    table = read_csv(data)                                  # headers and rows, or CsvError
    mapping = guess_mapping("contacts", table.headers)      # {"Email": "email", "Customer ID": "external_id"}
    plan = plan_import("contacts", table, mapping)          # records for ingest + every row's errors
    if plan.ok:
        outcome = run_import(workspace=ws, plan=plan)       # all rows in one transaction, or none

Nothing is written unless every row is valid: `plan_import` runs the ingest services' own validation
(`parse_contacts`, `parse_orders`, `parse_products`) over all rows first, and `run_import` writes them in
one transaction, rolling everything back if the services refuse anything after all.

Orders: one CSV row per order line; rows with the same order id make one order with several items.
Product columns (name, producer, category) upsert the products first.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from contacts.ingest import ingest_contacts, ingest_orders, ingest_products
from contacts.ingest.contacts import parse_contacts
from contacts.ingest.orders import parse_orders
from contacts.ingest.products import parse_products
from contacts.models import Workspace

MAX_ROWS = 50_000
BATCH = 1000  # records per ingest call (the services' statements stay bounded; one transaction around all)
IGNORE = ""
ATTRIBUTE_TEXT = "attribute:text"
ATTRIBUTE_NUMBER = "attribute:number"
TAG_SEPARATORS = re.compile(r"[;|]")


class CsvError(ValueError):
    """The file cannot be read as a CSV table (encoding, no header, too many rows...)."""


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    required: bool = False
    help: str = ""
    aliases: tuple[str, ...] = ()


CONTACT_TARGETS: tuple[Target, ...] = (
    Target("external_id", "Contact id", True, "your own id of the contact",
           ("external_id", "id", "contact_id", "customer_id", "user_id", "customer", "client_id")),
    Target("email", "Email", aliases=("email", "e_mail", "email_address", "mail")),
    Target("first_name", "First name", aliases=("first_name", "firstname", "given_name", "first")),
    Target("last_name", "Last name", aliases=("last_name", "lastname", "surname", "family_name", "last")),
    Target("phone", "Phone", aliases=("phone", "phone_number", "mobile", "telephone")),
    Target("country", "Country", help="ISO code, e.g. PL", aliases=("country", "country_code")),
    Target("city", "City", aliases=("city", "town")),
    Target("gender", "Gender", aliases=("gender", "sex")),
    Target("birth_date", "Birth date", help="YYYY-MM-DD", aliases=("birth_date", "birthday", "date_of_birth", "dob")),
    Target("created_at", "Created", help="ISO date or time", aliases=("created_at", "created", "signup_date",
                                                                     "registered_at", "joined")),
    Target("email_status", "Email status", help="subscribed, unsubscribed, bounced, complained or never_subscribed",
           aliases=("email_status", "subscription_status", "newsletter_status")),
    Target("traffic_source", "Traffic source", aliases=("traffic_source", "source", "acquisition_source")),
    Target("utm_campaign", "UTM campaign", aliases=("utm_campaign", "campaign")),
    Target("tags", "Tags", help="separated by ; or |", aliases=("tags", "tag", "labels")),
    Target(ATTRIBUTE_TEXT, "Custom attribute (text)", help="stored under the column's name"),
    Target(ATTRIBUTE_NUMBER, "Custom attribute (number)", help="stored under the column's name"),
)

ORDER_TARGETS: tuple[Target, ...] = (
    Target("external_id", "Order id", True, "rows with the same order id are one order",
           ("external_id", "order_id", "order", "order_number", "id", "transaction_id")),
    Target("contact", "Contact id", True, "the contact's id; unknown contacts are created",
           ("contact", "contact_id", "customer_id", "customer", "user_id", "client_id")),
    Target("ordered_at", "Ordered at", True, "ISO date or time", ("ordered_at", "order_date", "date", "created_at",
                                                                  "purchased_at", "timestamp")),
    Target("source", "Source", aliases=("source", "channel", "order_source")),
    Target("currency", "Currency", help="ISO code; default the workspace's", aliases=("currency", "currency_code")),
    Target("total", "Order total", help="default: the sum of its lines", aliases=("total", "order_total", "amount",
                                                                                 "revenue")),
    Target("sku", "Product SKU", help="one order line per row", aliases=("sku", "product_id", "product_sku",
                                                                         "item_id")),
    Target("quantity", "Quantity", help="default 1", aliases=("quantity", "qty", "units")),
    Target("unit_price", "Unit price", aliases=("unit_price", "price", "item_price")),
    Target("product_name", "Product name", aliases=("product_name", "product", "item_name", "name")),
    Target("producer", "Producer", aliases=("producer", "brand", "manufacturer", "vendor")),
    Target("category", "Product category", aliases=("category", "product_category")),
)

TARGETS: dict[str, tuple[Target, ...]] = {"contacts": CONTACT_TARGETS, "orders": ORDER_TARGETS}
KIND_LABELS = {"contacts": "Contacts", "orders": "Orders"}
MULTI_TARGETS = frozenset({ATTRIBUTE_TEXT, ATTRIBUTE_NUMBER})


@dataclass(frozen=True)
class CsvTable:
    headers: list[str]
    rows: list[list[str]]  # each as long as `headers`

    def line_of(self, row_index: int) -> int:
        """The line number a spreadsheet shows for a data row (the header is line 1)."""
        return row_index + 2


def read_csv(data: bytes, *, max_rows: int = MAX_ROWS) -> CsvTable:
    """Decode (UTF-8, with or without BOM; else Windows-1252) and parse a CSV with a header row.

    The delimiter (comma, semicolon or tab) is detected from the header line.

    >>> read_csv(b"id;email\\nu1;a@example.com\\n").rows
    [['u1', 'a@example.com']]
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    if "\x00" in text:
        raise CsvError("This does not look like a CSV file (it contains binary data).")
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        headers = [cell.strip() for cell in next(reader)]
    except StopIteration:
        raise CsvError("The file is empty.") from None
    except csv.Error as exc:
        raise CsvError(f"The file is not valid CSV: {exc}.") from exc
    if not any(headers):
        raise CsvError("The first line must name the columns.")
    seen: set[str] = set()
    for index, header in enumerate(headers):
        if not header:
            headers[index] = header = f"Column {index + 1}"
        if header in seen:
            raise CsvError(f"Two columns are named “{header}”: give every column its own name.")
        seen.add(header)
    rows = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(rows) == max_rows:
                raise CsvError(f"The file has more than {max_rows:,} rows: split it into smaller files.")
            rows.append([cell.strip() for cell in (row + [""] * len(headers))[: len(headers)]])
    except csv.Error as exc:
        raise CsvError(f"The file is not valid CSV near line {reader.line_num}: {exc}.") from exc
    if not rows:
        raise CsvError("The file has a header but no rows.")
    return CsvTable(headers=headers, rows=rows)


def normalise_header(header: str) -> str:
    """"E-mail Address" -> "e_mail_address"."""
    return re.sub(r"[^a-z0-9]+", "_", header.lower()).strip("_")


def guess_mapping(kind: str, headers: Iterable[str]) -> dict[str, str]:
    """A first mapping of columns to targets by their names; unrecognised columns are ignored.

    >>> guess_mapping("contacts", ["Customer ID", "E-mail", "Plan"])
    {'Customer ID': 'external_id', 'E-mail': 'email', 'Plan': ''}
    """
    taken: set[str] = set()
    mapping = {}
    for header in headers:
        name = normalise_header(header)
        found = next(
            (t.key for t in TARGETS[kind] if name in t.aliases and t.key not in taken),
            IGNORE,
        )
        if found:
            taken.add(found)
        mapping[header] = found
    return mapping


@dataclass
class RowError:
    line: int
    column: str
    message: str


@dataclass
class ImportPlan:
    """What an import would do: the ingest records, and every problem found (nothing written yet)."""

    kind: str
    records: list[dict] = field(default_factory=list)
    products: list[dict] = field(default_factory=list)
    mapping_errors: list[str] = field(default_factory=list)
    row_errors: list[RowError] = field(default_factory=list)
    rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.mapping_errors and not self.row_errors and bool(self.records)

    @property
    def bad_lines(self) -> int:
        return len({error.line for error in self.row_errors})


def check_mapping(kind: str, mapping: dict[str, str]) -> list[str]:
    """Problems of a mapping itself: unknown targets, a required field not mapped, one field mapped twice."""
    targets = {target.key: target for target in TARGETS[kind]}
    problems = [f"“{column}”: unknown field {key!r}" for column, key in mapping.items() if key and key not in targets]
    used: dict[str, list[str]] = {}
    for column, key in mapping.items():
        if key in targets and key not in MULTI_TARGETS:
            used.setdefault(key, []).append(column)
    for key, columns in used.items():
        if len(columns) > 1:
            problems.append(f"{targets[key].label} is chosen for several columns: {', '.join(columns)}.")
    for target in TARGETS[kind]:
        if target.required and target.key not in used:
            problems.append(f"Choose the column that holds the {target.label.lower()} (required).")
    return problems


def plan_import(kind: str, table: CsvTable, mapping: dict[str, str]) -> ImportPlan:
    """Turn the rows into ingest records and check all of them with the ingest services' own validation."""
    if kind not in TARGETS:
        raise ValueError(f"unknown kind {kind!r}")
    plan = ImportPlan(kind=kind, rows=len(table.rows))
    plan.mapping_errors = check_mapping(kind, {c: k for c, k in mapping.items() if c in table.headers})
    if plan.mapping_errors:
        return plan
    columns = [(index, header, mapping.get(header, IGNORE)) for index, header in enumerate(table.headers)]
    columns = [(index, header, key) for index, header, key in columns if key]
    if kind == "contacts":
        _plan_contacts(plan, table, columns)
    else:
        _plan_orders(plan, table, columns)
    plan.row_errors.sort(key=lambda error: error.line)
    return plan


def _plan_contacts(plan: ImportPlan, table: CsvTable, columns: list[tuple[int, str, str]]) -> None:
    column_of: dict[str, str] = {}
    lines: list[int] = []
    for row_index, row in enumerate(table.rows):
        line = table.line_of(row_index)
        record: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        for index, header, key in columns:
            value = row[index]
            if value == "":
                continue  # an empty cell keeps what the contact has (it does not erase it)
            if key == ATTRIBUTE_TEXT:
                attributes[header] = value
            elif key == ATTRIBUTE_NUMBER:
                number = _number(value)
                if number is None:
                    plan.row_errors.append(RowError(line, header, f"{value!r} is not a number"))
                    continue
                attributes[header] = number
            elif key == "tags":
                record["tags"] = [tag.strip() for tag in TAG_SEPARATORS.split(value) if tag.strip()]
                column_of["tags"] = header
            else:
                record[key] = value
                column_of[key] = header
        if attributes:
            record["attributes"] = attributes
        plan.records.append(record)
        lines.append(line)
    _, errors = parse_contacts(plan.records)
    plan.row_errors.extend(_row_errors(errors, lines, column_of, root="contacts"))


def _plan_orders(plan: ImportPlan, table: CsvTable, columns: list[tuple[int, str, str]]) -> None:
    column_of = {key: header for _, header, key in columns}
    orders: dict[str, dict] = {}
    order_lines: dict[str, int] = {}
    item_lines: dict[str, list[int]] = {}
    products: dict[str, dict] = {}
    product_lines: dict[str, int] = {}
    for row_index, row in enumerate(table.rows):
        line = table.line_of(row_index)
        values = {key: row[index] for index, _, key in columns if row[index] != ""}
        order_id = values.get("external_id", "")
        if not order_id:
            plan.row_errors.append(RowError(line, column_of["external_id"], "the order id is missing"))
            continue
        order = orders.get(order_id)
        if order is None:
            order = orders[order_id] = {"external_id": order_id, "items": []}
            order_lines[order_id] = line
            item_lines[order_id] = []
        for key in ("contact", "ordered_at", "source", "currency", "total"):
            if key in values:
                if key in order and order[key] != values[key]:
                    plan.row_errors.append(RowError(
                        line, column_of[key], f"differs from an earlier row of order {order_id} ({order[key]!r})"
                    ))
                order[key] = values[key]
        if "sku" in values:
            item: dict[str, Any] = {"sku": values["sku"]}
            if "quantity" in values:
                item["quantity"] = _whole(values["quantity"])
            if "unit_price" in values:
                item["unit_price"] = values["unit_price"]
            order["items"].append(item)
            item_lines[order_id].append(line)
            details = {k: values[c] for k, c in (("name", "product_name"), ("producer", "producer"),
                                                  ("category", "category")) if c in values}
            if details:
                products.setdefault(values["sku"], {"sku": values["sku"]}).update(details)
                product_lines.setdefault(values["sku"], line)
        elif any(key in values for key in ("quantity", "unit_price", "product_name", "producer", "category")):
            plan.row_errors.append(RowError(line, column_of.get("sku", ""), "an order line needs a product SKU"))
    plan.records = list(orders.values())
    plan.products = list(products.values())
    ids = list(orders)
    _, errors = parse_orders(plan.records)
    for error in errors:
        order_id = ids[error["index"]]
        match = re.match(r"orders\[\d+\]\.items\[(\d+)\]\.?(\w*)", error["path"])
        if match:
            line = item_lines[order_id][int(match.group(1))]
            column = column_of.get(match.group(2), column_of.get("sku", ""))
        else:
            line = order_lines[order_id]
            name = error["path"].rsplit(".", 1)[-1] if "." in error["path"] else ""
            column = column_of.get(name, "")
        plan.row_errors.append(RowError(line, column, error["message"]))
    skus = list(products)
    _, product_errors = parse_products(plan.products)
    for error in product_errors:
        name = error["path"].rsplit(".", 1)[-1]
        column = column_of.get({"name": "product_name"}.get(name, name), "")
        plan.row_errors.append(RowError(product_lines[skus[error["index"]]], column, error["message"]))


def _row_errors(errors: list[dict], lines: list[int], column_of: dict[str, str], *, root: str) -> list[RowError]:
    """Ingest errors (`contacts[3].email`) as CSV errors (line 5, column "E-mail")."""
    result = []
    for error in errors:
        rest = error["path"][len(f"{root}[{error['index']}]") :].lstrip(".")
        key = re.split(r"[.\[]", rest, maxsplit=1)[0] if rest else ""
        column = column_of.get(key, "")
        if key == "attributes":
            column = rest.split(".", 1)[1] if "." in rest else ""
        result.append(RowError(lines[error["index"]], column, error["message"]))
    return result


def _number(text: str) -> int | float | None:
    try:
        number = Decimal(text.replace(",", ".") if text.count(",") == 1 and "." not in text else text)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    return int(number) if number == number.to_integral_value() else float(number)


def _whole(text: str) -> Any:
    """A quantity as an int when it is one (the ingest service checks the rest)."""
    number = _number(text)
    return number if isinstance(number, int) else text


@dataclass
class ImportOutcome:
    created: int = 0
    updated: int = 0
    products: int = 0


class ImportRefused(Exception):
    """The ingest services refused rows during the import itself; everything was rolled back."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} rows refused")


def run_import(*, workspace: Workspace, plan: ImportPlan) -> ImportOutcome:
    """Import a valid plan in one transaction through the ingest services: all rows or none."""
    if not plan.ok:
        raise ValueError("only a plan without errors can be imported")
    outcome = ImportOutcome()
    service = ingest_contacts if plan.kind == "contacts" else ingest_orders
    with transaction.atomic():
        for start in range(0, len(plan.products), BATCH):
            result = ingest_products(workspace=workspace, records=plan.products[start : start + BATCH])
            if result.errors:
                raise ImportRefused(result.errors)
            outcome.products += result.stored
        for start in range(0, len(plan.records), BATCH):
            result = service(workspace=workspace, records=plan.records[start : start + BATCH])
            if result.errors:
                raise ImportRefused(result.errors)
            outcome.created += result.created
            outcome.updated += result.updated
    return outcome
