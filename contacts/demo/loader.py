"""Load the generated demo shop into a workspace, in bulk.

PostgreSQL: `COPY ... FROM STDIN` through psycopg 3, streamed per chunk of
contacts (a million contacts never sit in memory), with contact and order ids
reserved from their sequences so foreign keys can be written before the rows
exist. SQLite (the quick start): `bulk_create` in batches. Either way the
rows come from `contacts.demo.generator`, so both databases get the same data.
Afterwards every contact gets its `ContactStats` row from
`contacts.stats.recompute_workspace_stats`, and PostgreSQL its `ANALYZE`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice

from django.db import DatabaseError, connection, models, transaction
from django.db.models.deletion import CASCADE, DO_NOTHING, SET_NULL

from contacts.demo import bulk, copy_rows
from contacts.demo.generator import (
    ATTRIBUTE_TYPES,
    BLOCK,
    CONTACT_FIELDS,
    TAG_NAMES,
    Catalog,
    ContactBundle,
    generate_catalog,
    generate_contacts,
)
from contacts.models import (
    Contact,
    ContactStats,
    ContactTag,
    Event,
    EventType,
    Order,
    OrderItem,
    Product,
    Tag,
    Workspace,
)
from contacts.planner_stats import analyze_tables
from contacts.stats import recompute_workspace_stats

DEFAULT_WORKSPACE = "Demo Shop"
CHUNK_CONTACTS = 5000
SQLITE_BATCH = 2000

Progress = Callable[[str], None]


class SeedRefused(Exception):
    """The workspace already has contacts (seed it with reset, or pick another workspace)."""


@dataclass
class SeedResult:
    workspace_id: int
    counts: dict[str, int]
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)


def demo_now(now: datetime | None = None) -> datetime:
    """The seed's "now": the given aware time in UTC, or the current time truncated to the hour."""
    if now is None:
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def seed_workspace(
    *,
    workspace: Workspace,
    contacts: int,
    seed: int,
    now: datetime,
    progress: Progress | None = None,
    chunk_size: int = CHUNK_CONTACTS,
) -> SeedResult:
    """Fill an empty workspace with a demo shop of `contacts` contacts; the same (contacts, seed, now) give
    the same rows. Refuses (SeedRefused) if the workspace already has contacts."""
    say = progress or (lambda message: None)
    if contacts < 1:
        raise ValueError("contacts must be at least 1")
    if Contact.objects.filter(workspace=workspace).exists():
        raise SeedRefused(f"workspace {workspace.name!r} already has contacts")
    clock = _Clock()
    now_ts = int(now.timestamp())
    catalog = generate_catalog(random.Random(seed), n_contacts=contacts, now_ts=now_ts)
    postgres = connection.vendor == "postgresql"
    # Into a database without any contacts yet, PostgreSQL loads like a bulk loader (contacts.demo.bulk).
    first_load = postgres and bulk.tables_are_empty(_LOADED)

    with transaction.atomic():
        workspace.attribute_types = {**ATTRIBUTE_TYPES, **(workspace.attribute_types or {})}
        workspace.save(update_fields=["attribute_types"])
        product_ids = _create_products(workspace, catalog)
        tag_ids = _create_tags(workspace)
        triggers_skipped = postgres and _skip_foreign_key_triggers()
        indexes: dict[str, list[str]] = {}
        if first_load:
            bulk.truncate_for_freeze(Contact)
            indexes = bulk.drop_secondary_indexes(_LOADED)
        rows = {"workspace": workspace, "now": now, "product_ids": product_ids, "tag_ids": tag_ids}
        if first_load:
            mode = f"first load in {_worker_count()} worker processes: rows frozen, indexes built afterwards"
        else:
            mode = "into existing data"
        say(f"Seeding {contacts:,} contacts into {workspace.name!r} ({connection.vendor}, {mode}, seed {seed}, "
            f"now {now:%Y-%m-%d %H:%M} UTC)")
        source = _Source(seed=seed, catalog=catalog, contacts=contacts, now_ts=now_ts, chunk_size=chunk_size)
        load = _CopyWriter(**rows, freeze=first_load) if postgres else _BulkCreateWriter(**rows)
        written = load.write_first_load(source) if first_load else load.write_all(source)
        next_report = 0.1
        for _ in written:
            done = load.counts["contacts"] / contacts
            if done >= next_report or done == 1:
                say(f"  {load.counts['contacts']:>10,} contacts {load.counts['orders']:>11,} orders "
                    f"{load.counts['order_items']:>11,} items {load.counts['events']:>12,} events "
                    f"({clock.elapsed():.1f} s)")
                next_report = done + 0.1
        load.finish()
        _record_event_types(workspace, load.first_seen)
        clock.lap("generate and write")
        stats_table = ContactStats._meta.db_table
        if indexes:
            say("Building the indexes ...")
            bulk.build_indexes(sql for table, built in indexes.items() if table != stats_table for sql in built)
            clock.lap("indexes")
        # Without fresh statistics the planner takes the new workspace for empty and joins its
        # millions of rows in nested loops. ANALYZE counts this transaction's own rows.
        analyze_tables(Contact, ContactTag, Product, Order, OrderItem, Event)
        clock.lap("analyze")
        if triggers_skipped:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        _check_references(workspace, load.counts)
        clock.lap("reference check")
        if first_load:
            _compute_figures(workspace, now=now, say=say)
            bulk.build_indexes(indexes.get(stats_table, []))
            analyze_tables(ContactStats)
            clock.lap("figures")
    clock.lap("commit")
    if not first_load:
        _compute_figures(workspace, now=now, say=say)
        clock.lap("figures")
    elif not connection.in_atomic_block:  # VACUUM cannot run inside a caller's transaction
        # Set the visibility map of the figures (inserted, not copied frozen): index-only scans from the start.
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM {connection.ops.quote_name(stats_table)}")
        clock.lap("vacuum figures")
    counts = workspace_counts(workspace)
    return SeedResult(workspace_id=workspace.pk, counts=counts, seconds=clock.elapsed(), phases=clock.laps)


# The tables a seed fills with rows of its own (products and tags are few and may already exist).
_LOADED = (Contact, ContactTag, ContactStats, Order, OrderItem, Event)


def _compute_figures(workspace: Workspace, *, now: datetime, say: Progress) -> None:
    say("Computing contact figures (contacts.stats.recompute_workspace_stats) ...")
    # Every contact's ContactStats row with the figures as of the demo's "now" (analysed when done).
    recompute_workspace_stats(workspace_id=workspace.pk, now=now)


class _Clock:
    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self.last
        self.last = now


def workspace_counts(workspace: Workspace) -> dict[str, int]:
    return {
        "contacts": Contact.objects.filter(workspace=workspace).count(),
        "contact_stats": ContactStats.objects.filter(contact__workspace=workspace).count(),
        "products": Product.objects.filter(workspace=workspace).count(),
        "orders": Order.objects.filter(workspace=workspace).count(),
        "order_items": OrderItem.objects.filter(workspace=workspace).count(),
        "events": Event.objects.filter(workspace=workspace).count(),
        "event_types": EventType.objects.filter(workspace=workspace).count(),
        "tags": Tag.objects.filter(workspace=workspace).count(),
        "contact_tags": ContactTag.objects.filter(workspace=workspace).count(),
    }


@transaction.atomic
def reset_workspace_data(*, workspace: Workspace) -> None:
    """Delete the workspace's contacts (and everything that hangs off them), products, tags and event types.

    Segments, campaigns, members and API keys stay. Set-based: no rows are loaded into Python, which
    matters at a million contacts (Django's collector would fetch every contact and order first).
    """
    _delete_cascading(Contact.objects.filter(workspace=workspace))
    for model in (Product, Tag, EventType):
        _delete_cascading(model.objects.filter(workspace=workspace))


def _delete_cascading(queryset: models.QuerySet, depth: int = 0) -> None:
    """DELETE these rows after what references them, following each relation's on_delete."""
    if depth > 8:
        raise RuntimeError(f"relations nest too deeply under {queryset.model.__name__}")
    for relation in queryset.model._meta.related_objects:
        if relation.many_to_many:
            through = relation.through
            if through._meta.auto_created:
                through_field = next(
                    f for f in through._meta.fields if f.is_relation and f.related_model is queryset.model
                )
                _delete_cascading(through._base_manager.filter(**{f"{through_field.name}__in": queryset}), depth + 1)
            continue  # an explicit through model is also a reverse foreign key, handled below
        related = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": queryset})
        if relation.on_delete is CASCADE:
            _delete_cascading(related, depth + 1)
        elif relation.on_delete is SET_NULL:
            related.update(**{relation.field.name: None})
        elif relation.on_delete is not DO_NOTHING and related.exists():
            raise RuntimeError(f"{relation.related_model.__name__} rows still refer to {queryset.model.__name__}")
    # _raw_delete issues one DELETE ... WHERE; the relations above are already handled.
    queryset._raw_delete(queryset.db)


def _chunks(bundles: Iterator[ContactBundle], size: int) -> Iterator[list[ContactBundle]]:
    while chunk := list(islice(bundles, size)):
        yield chunk


def _create_products(workspace: Workspace, catalog: Catalog) -> list[int]:
    Product.objects.bulk_create(
        [
            Product(workspace=workspace, sku=p.sku, name=p.name, producer=p.producer, category=p.category,
                    price=_money(p.price_cents))
            for p in catalog.products
        ],
        batch_size=500,
        # A workspace without contacts may already have products (from ingest): the demo's details win.
        update_conflicts=True,
        unique_fields=["workspace", "sku"],
        update_fields=["name", "producer", "category", "price"],
    )
    ids = dict(Product.objects.filter(workspace=workspace).values_list("sku", "id"))
    return [ids[p.sku] for p in catalog.products]


def _create_tags(workspace: Workspace) -> dict[str, int]:
    Tag.objects.bulk_create([Tag(workspace=workspace, name=name) for name in TAG_NAMES], ignore_conflicts=True)
    return dict(Tag.objects.filter(workspace=workspace, name__in=TAG_NAMES).values_list("name", "id"))


def _record_event_types(workspace: Workspace, first_seen: dict[str, int]) -> None:
    for name, ts in sorted(first_seen.items()):
        at = datetime.fromtimestamp(ts, UTC)
        event_type, created = EventType.objects.get_or_create(workspace=workspace, name=name,
                                                              defaults={"first_seen_at": at})
        if not created and event_type.first_seen_at > at:
            EventType.objects.filter(pk=event_type.pk).update(first_seen_at=at)


def _skip_foreign_key_triggers() -> bool:
    """Skip PostgreSQL's per-row foreign-key triggers for the rest of this transaction, where allowed.

    Each COPYed row would otherwise queue a deferred check that runs, one lookup per row, at commit (about
    40 s per 100,000 contacts). The loader writes ids it reserved itself, and `_check_references` verifies
    every reference set-based before commit instead. Needs superuser (or PostgreSQL 15's GRANT SET ON
    PARAMETER); without it the triggers simply run.
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
    except DatabaseError:
        return False
    return True


def _check_references(workspace: Workspace, written: dict[str, int]) -> None:
    """Every written row refers to an existing parent of the same workspace (counted with inner joins)."""
    found = {
        "orders": Order.objects.filter(workspace=workspace, contact__workspace=workspace).count(),
        "order_items": OrderItem.objects.filter(
            workspace=workspace, order__workspace=workspace, product__workspace=workspace
        ).count(),
        "events": Event.objects.filter(workspace=workspace, contact__workspace=workspace).count(),
        "contact_tags": ContactTag.objects.filter(
            workspace=workspace, contact__workspace=workspace, tag__workspace=workspace
        ).count(),
    }
    broken = {table: (written[table], count) for table, count in found.items() if count != written[table]}
    if broken:
        raise RuntimeError(f"demo rows with dangling references (written, found): {broken}")


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


_fromtimestamp = datetime.fromtimestamp


@dataclass(frozen=True)
class _Source:
    """What to generate: contacts 0..contacts-1 of a seed, written `chunk_size` contacts at a time."""

    seed: int
    catalog: Catalog
    contacts: int
    now_ts: int
    chunk_size: int

    def chunks(self) -> Iterator[list[ContactBundle]]:
        bundles = generate_contacts(self.seed, self.catalog, n_contacts=self.contacts, now_ts=self.now_ts)
        return _chunks(bundles, self.chunk_size)


class _Writer:
    def __init__(self, *, workspace: Workspace, now: datetime, product_ids: list[int], tag_ids: dict[str, int]):
        self.workspace = workspace
        self.now = now
        self.product_ids = product_ids
        self.tag_ids = tag_ids
        self.counts = {"contacts": 0, "orders": 0, "order_items": 0, "events": 0, "contact_tags": 0}
        self.first_seen: dict[str, int] = {}

    def write_all(self, source: _Source) -> Iterator[None]:
        """Write every chunk; yields after each one (for progress reports)."""
        for chunk in source.chunks():
            self.write(chunk)
            yield

    def write(self, chunk: list[ContactBundle]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        pass

    def _note_event_types(self, chunk: list[ContactBundle]) -> None:
        first_seen = self.first_seen
        for bundle in chunk:
            for event in bundle.events:
                kind, at = event[0], event[1]
                if at < first_seen.get(kind, at + 1):
                    first_seen[kind] = at

    def _count(self, chunk: list[ContactBundle]) -> None:
        self.counts["contacts"] += len(chunk)
        for bundle in chunk:
            self.counts["orders"] += len(bundle.orders)
            self.counts["order_items"] += sum(len(order[4]) for order in bundle.orders)
            self.counts["events"] += len(bundle.events)
            self.counts["contact_tags"] += len(bundle.tags)


def _columns(model: type[models.Model], names: Iterable[str]) -> str:
    quote = connection.ops.quote_name
    return ", ".join(quote(model._meta.get_field(name).column) for name in names)


# The columns of each table's COPY, in the order contacts.demo.copy_rows writes them.
COPY_COLUMNS = {
    "contacts": (Contact, ("id", "workspace", *CONTACT_FIELDS, "updated_at")),
    "orders": (Order, ("id", "workspace", "contact", "external_id", "ordered_at", "source", "currency", "total")),
    "order_items": (OrderItem, ("workspace", "order", "contact", "ordered_at", "product", "quantity", "unit_price")),
    "events": (Event, ("workspace", "contact", "type", "occurred_at", "device", "url", "campaign", "properties")),
    "contact_tags": (ContactTag, ("workspace", "contact", "tag")),
}


def _worker_count() -> int:
    """Processes that generate rows while this one streams them: all cores but one (PostgreSQL's)."""
    return max(1, (os.cpu_count() or 2) - 1)


class _CopyWriter(_Writer):
    """PostgreSQL: one COPY per table per chunk of contacts (contacts.demo.copy_rows makes the text).

    Into existing data, ids for contacts and orders are reserved from their sequences chunk by chunk. A first
    load (`freeze`: the tables were truncated in this transaction and the rows are written frozen) has the
    tables to itself until it commits, so ids are computed instead and the chunks are made by worker
    processes in parallel; the sequences are moved past them at the end.
    """

    def __init__(self, *, freeze: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        quote = connection.ops.quote_name
        options = " WITH (FREEZE)" if freeze else ""
        self.sql = {
            table: f"COPY {quote(model._meta.db_table)} ({_columns(model, names)}) FROM STDIN{options}"
            for table, (model, names) in COPY_COLUMNS.items()
        }

    def write_first_load(self, source: _Source) -> Iterator[None]:
        ids = copy_rows.Ids(first_contact=self._next_id(Contact), first_order=self._next_id(Order))
        common = {
            "seed": source.seed, "n_contacts": source.contacts, "now_ts": source.now_ts, "ids": ids,
            "workspace_id": self.workspace.pk, "currency": self.workspace.currency,
            "product_ids": tuple(self.product_ids), "tag_ids": tuple(sorted(self.tag_ids.items())),
        }  # fmt: skip
        step = max(source.chunk_size - source.chunk_size % BLOCK, BLOCK)  # whole blocks: no work made twice
        jobs = [
            copy_rows.Job(start=start, stop=min(start + step, source.contacts), **common)
            for start in range(0, source.contacts, step)
        ]
        for block in _in_parallel(jobs, source.catalog):
            self.write_block(block)
            yield
        self._move_sequence(Contact, ids.contact(source.contacts - 1))
        self._move_sequence(Order, ids.last_order(source.contacts))

    def write(self, chunk: list[ContactBundle]) -> None:
        with connection.connection.cursor() as cursor:
            reserved = self._reserve_ids(cursor, Contact, len(chunk))
            contact_ids = dict(zip((b.index for b in chunk), reserved, strict=True))
            order_ids = iter(self._reserve_ids(cursor, Order, sum(len(b.orders) for b in chunk)))
        block = copy_rows.format_bundles(
            chunk,
            workspace_id=self.workspace.pk,
            currency=self.workspace.currency,
            now_ts=int(self.now.timestamp()),
            product_ids=self.product_ids,
            tag_ids=self.tag_ids,
            contact_id=contact_ids.__getitem__,
            order_id=lambda index, number: next(order_ids),
        )
        self.write_block(block)

    def write_block(self, block: copy_rows.Block) -> None:
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            for table in copy_rows.TABLES:
                if block.counts[table]:
                    with cursor.copy(self.sql[table]) as copy:
                        copy.write(block.texts[table])
        for table, count in block.counts.items():
            self.counts[table] += count
        for kind, at in block.first_seen.items():
            if at < self.first_seen.get(kind, at + 1):
                self.first_seen[kind] = at

    def _reserve_ids(self, cursor, model: type[models.Model], count: int) -> list[int]:
        # nextval per row is safe next to concurrent inserts: every id handed out is ours alone.
        if count == 0:
            return []
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            (model._meta.db_table, count),
        )
        return sorted(row[0] for row in cursor.fetchall())

    def _next_id(self, model: type[models.Model]) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [model._meta.db_table])
            return cursor.fetchone()[0]

    def _move_sequence(self, model: type[models.Model], last_id: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [model._meta.db_table, last_id])


def _in_parallel(jobs: list[copy_rows.Job], catalog: Catalog) -> Iterator[copy_rows.Block]:
    """The jobs' blocks in order, made by worker processes, at most two per worker ahead of the consumer."""
    context = multiprocessing.get_context("spawn")  # the workers need no Django, and no copy of this process
    workers = _worker_count()
    with context.Pool(workers, initializer=copy_rows.use_catalog, initargs=(catalog,)) as pool:
        pending = deque()
        queue = iter(jobs)
        for job in islice(queue, 2 * workers):
            pending.append(pool.apply_async(copy_rows.make_block, (job,)))
        while pending:
            block = pending.popleft().get()
            following = next(queue, None)
            if following is not None:
                pending.append(pool.apply_async(copy_rows.make_block, (following,)))
            yield block


class _BulkCreateWriter(_Writer):
    """SQLite and any other database: bulk_create in batches; the database returns the new ids."""

    def finish(self) -> None:
        # auto_now stamped the wall clock; the demo's timestamps all derive from its "now".
        Contact.objects.filter(workspace=self.workspace).update(updated_at=self.now)

    def write(self, chunk: list[ContactBundle]) -> None:
        workspace = self.workspace
        workspace_id = workspace.pk
        dt = _fromtimestamp
        contacts = []
        for bundle in chunk:
            values = dict(zip(CONTACT_FIELDS, bundle.contact, strict=True))
            values["created_at"] = dt(values["created_at"], UTC)
            contacts.append(Contact(workspace_id=workspace_id, **values))
        Contact.objects.bulk_create(contacts, batch_size=SQLITE_BATCH)

        orders, order_items = [], []
        for bundle, contact in zip(chunk, contacts, strict=True):
            for external_id, ordered_at, source, total, items in bundle.orders:
                order = Order(workspace_id=workspace_id, contact_id=contact.pk, external_id=external_id,
                              ordered_at=dt(ordered_at, UTC), source=source, currency=workspace.currency,
                              total=_money(total))
                orders.append(order)
                order_items.append(items)
        Order.objects.bulk_create(orders, batch_size=SQLITE_BATCH)
        OrderItem.objects.bulk_create(
            [
                OrderItem(workspace_id=workspace_id, order_id=order.pk, contact_id=order.contact_id,
                          ordered_at=order.ordered_at,
                          product_id=self.product_ids[p], quantity=qty, unit_price=_money(cents))
                for order, items in zip(orders, order_items, strict=True)
                for p, qty, cents in items
            ],
            batch_size=SQLITE_BATCH,
        )
        Event.objects.bulk_create(
            [
                Event(workspace_id=workspace_id, contact_id=contact.pk, type=kind, occurred_at=dt(at, UTC),
                      device=device, url=url, campaign=campaign, properties=json.loads(properties))
                for bundle, contact in zip(chunk, contacts, strict=True)
                for kind, at, device, url, campaign, properties in bundle.events
            ],
            batch_size=SQLITE_BATCH,
        )
        ContactTag.objects.bulk_create(
            [
                ContactTag(workspace_id=workspace_id, contact_id=contact.pk, tag_id=self.tag_ids[name])
                for bundle, contact in zip(chunk, contacts, strict=True)
                for name in bundle.tags
            ],
            batch_size=SQLITE_BATCH,
        )
        self._note_event_types(chunk)
        self._count(chunk)
