"""The demo rows as PostgreSQL COPY text, table by table; no Django here, so worker processes can make it.

`format_bundles` turns generated contacts (`contacts.demo.generator`) into the text of one COPY per table
(tab-separated, `\\N` for null, times in UTC), with the database ids it is given. `make_block` is what a
worker process runs for a first load into empty tables: it generates a block of contacts and formats them
with ids computed from the block (contact id = first id + contact index; order id = first order id +
contact index * MAX_ORDERS_PER_CONTACT + number of the order), so that blocks need nothing from each other
and can be made in parallel while the main process streams the previous ones to the database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from contacts.demo.generator import MAX_ORDERS_PER_CONTACT, Catalog, ContactBundle, generate_contacts

TABLES = ("contacts", "orders", "order_items", "events", "contact_tags")
NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass
class Block:
    """COPY text per table, the rows written per table, and the first time each event type was seen."""

    texts: dict[str, str]
    counts: dict[str, int]
    first_seen: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Ids:
    """Where a first load's ids start: contacts and orders get ids computed from the contact's index."""

    first_contact: int
    first_order: int

    def contact(self, index: int) -> int:
        return self.first_contact + index

    def order(self, index: int, number: int) -> int:
        return self.first_order + index * MAX_ORDERS_PER_CONTACT + number - 1

    def last_order(self, n_contacts: int) -> int:
        return self.first_order + n_contacts * MAX_ORDERS_PER_CONTACT - 1


@dataclass(frozen=True)
class Job:
    """One block for a worker: contacts start..stop-1 of a seed, and what their rows refer to (the catalog
    is given to each worker once, `use_catalog`)."""

    seed: int
    n_contacts: int
    now_ts: int
    start: int
    stop: int
    ids: Ids
    workspace_id: int
    currency: str
    product_ids: tuple[int, ...]
    tag_ids: tuple[tuple[str, int], ...]


_catalog: Catalog | None = None


def use_catalog(catalog: Catalog) -> None:
    """A worker process's initializer: the catalog every job of the load draws from."""
    global _catalog
    _catalog = catalog


def make_block(job: Job) -> Block:
    if _catalog is None:
        raise RuntimeError("use_catalog() first")
    bundles = generate_contacts(
        job.seed, _catalog, n_contacts=job.n_contacts, now_ts=job.now_ts, start=job.start, stop=job.stop
    )
    return format_bundles(
        bundles,
        workspace_id=job.workspace_id,
        currency=job.currency,
        now_ts=job.now_ts,
        product_ids=job.product_ids,
        tag_ids=dict(job.tag_ids),
        contact_id=job.ids.contact,
        order_id=job.ids.order,
    )


def format_bundles(
    bundles: Iterable[ContactBundle],
    *,
    workspace_id: int,
    currency: str,
    now_ts: int,
    product_ids: tuple[int, ...] | list[int],
    tag_ids: dict[str, int],
    contact_id: Callable[[int], int],
    order_id: Callable[[int, int], int],
) -> Block:
    """COPY text of these contacts, with `contact_id(index)` and `order_id(index, number)` as their ids.

    Columns, in order: see `loader.COPY_COLUMNS`.
    """
    contacts, orders, items, events, tags = [], [], [], [], []
    first_seen: dict[str, int] = {}
    ws = str(workspace_id)
    updated = _time(now_ts)
    for bundle in bundles:
        cid = str(contact_id(bundle.index))
        row = bundle.contact
        contacts.append(
            "\t".join(
                (
                    cid, ws, *(_text(v) for v in row[:8]), _date(row[8]), _time(row[9]),
                    *(_text(v) for v in row[10:13]), _text(json.dumps(row[13], ensure_ascii=False)), updated,
                )
            )  # fmt: skip
        )
        for number, (external_id, ordered_at, source, total, order_items) in enumerate(bundle.orders, start=1):
            oid = str(order_id(bundle.index, number))
            at = _time(ordered_at)
            orders.append("\t".join((oid, ws, cid, external_id, at, _text(source), currency, _money(total))))
            for product, quantity, cents in order_items:
                items.append("\t".join((ws, oid, cid, at, str(product_ids[product]), str(quantity), _money(cents))))
        for kind, at, device, url, campaign, properties in bundle.events:
            events.append(
                "\t".join((ws, cid, kind, _time(at), _text(device), _text(url), _text(campaign), _text(properties)))
            )
            if at < first_seen.get(kind, at + 1):
                first_seen[kind] = at
        tags.extend(f"{ws}\t{cid}\t{tag_ids[name]}" for name in bundle.tags)
    rows = dict(zip(TABLES, (contacts, orders, items, events, tags), strict=True))
    texts = {table: "".join(f"{line}\n" for line in lines) for table, lines in rows.items()}
    return Block(texts=texts, counts={table: len(lines) for table, lines in rows.items()}, first_seen=first_seen)


def _text(value: object) -> str:
    if value is None:
        return NULL
    return str(value).translate(_ESCAPES)


def _date(value) -> str:
    return NULL if value is None else value.isoformat()


def _time(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(ts))


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"
