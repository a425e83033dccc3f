"""Computed contact figures: the `ContactStats` row of every contact.

Three ways in, one derivation (documented for marketers in docs/computed-figures.md):

- `refresh_contact_stats` runs inside the ingest transaction for the contacts a
  call touched: one UPDATE ... FROM a set-based "figures" query restricted to those
  contacts, which writes each stats row once.
- `recompute_workspace_stats` runs the same figures query once over the whole
  workspace into a temporary table (one pass over orders and events: they are
  stored in arrival order, not by contact, so ranges of contacts would each read
  the whole table), then applies it in chunks of contact ids, so that no statement
  holds row locks for long. A row that ingest refreshed while the rebuild ran is
  left alone: its figures are newer than the rebuild's.
- `refresh_time_dependent_stats` and `refresh_rfm` refresh what changes with the
  clock or with the rest of the workspace; `contacts.tasks` runs them hourly.

The SQL runs unchanged on PostgreSQL and SQLite (>= 3.33 for UPDATE ... FROM).
Money is summed in integer cents so both databases round identically (SQLite
stores decimals as floats), and ties are broken by code point order on both.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from contacts.models import Contact, ContactStats, Event, Order, OrderItem, Product, Workspace
from contacts.planner_stats import analyze_tables, note_rows_written

Lifecycle = ContactStats.Lifecycle
Tier = ContactStats.LoyaltyTier
Rfm = ContactStats.RfmSegment

KINDS = frozenset({"contact", "tags", "orders", "events"})
ALL_KINDS = ("contact", "orders", "events")

# Engagement: points per event inside the window, capped. A click or a cart add
# shows more intent than an open; a visit is the weakest signal.
ENGAGEMENT_POINTS = {
    "email_open": 2,
    "email_click": 5,
    "cart_add": 5,
    "page_view": 1,
    "product_view": 1,
    "app_open": 1,
}
ENGAGEMENT_CAP = 100

MOBILE_DEVICES = ("mobile", "tablet")
DESKTOP_DEVICES = ("desktop",)  # "other" counts as no device information

# rfm_segment by recency score (rows, 5 = most recent) and frequency score
# (columns 1..5): the usual R/F grid, with "about to sleep" folded into
# need_attention and the oldest low-frequency cell named lost.
RFM_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: (Rfm.NEW_CUSTOMERS, Rfm.POTENTIAL_LOYALIST, Rfm.POTENTIAL_LOYALIST, Rfm.CHAMPIONS, Rfm.CHAMPIONS),
    4: (Rfm.PROMISING, Rfm.POTENTIAL_LOYALIST, Rfm.POTENTIAL_LOYALIST, Rfm.LOYAL, Rfm.LOYAL),
    3: (Rfm.NEED_ATTENTION, Rfm.NEED_ATTENTION, Rfm.NEED_ATTENTION, Rfm.LOYAL, Rfm.LOYAL),
    2: (Rfm.HIBERNATING, Rfm.HIBERNATING, Rfm.AT_RISK, Rfm.AT_RISK, Rfm.CANT_LOSE),
    1: (Rfm.LOST, Rfm.LOST, Rfm.AT_RISK, Rfm.AT_RISK, Rfm.CANT_LOSE),
}

# recompute_workspace_stats applies the rebuilt figures in id ranges of this many contacts,
# and lets PostgreSQL hash the aggregates of a whole workspace in this much memory.
RECOMPUTE_CHUNK = 50_000
RECOMPUTE_WORK_MEM = "256MB"
_REBUILD = "contacts_stats_rebuild"  # temporary table of recompute_workspace_stats

_STATS = ContactStats._meta.db_table
_CONTACT = Contact._meta.db_table
_ORDER = Order._meta.db_table
_ITEM = OrderItem._meta.db_table
_PRODUCT = Product._meta.db_table
_EVENT = Event._meta.db_table


# --- public interface -------------------------------------------------------------------------------------------


def refresh_contact_stats(
    *,
    workspace_id: int,
    contact_ids: Iterable[int],
    kinds: Collection[str] = ALL_KINDS,
    now: datetime | None = None,
) -> None:
    """Recompute every per-contact figure of these contacts from their orders, items and events.

    Creates missing ContactStats rows. Runs in the caller's transaction (ingest calls it
    right after writing). `kinds` names what the caller changed: without "orders" the
    order-derived figures are kept, without "events" the event-derived ones; the
    clock-dependent figures are always refreshed, so the result equals a full refresh
    as long as `kinds` is truthful. A caller that moves an order to another contact
    passes both contacts. RFM scores are workspace-wide and left to `refresh_rfm`,
    except that a contact left without orders loses them at once.

    Example: refresh_contact_stats(workspace_id=1, contact_ids=[10, 11], kinds=("events",))
    """
    unknown = set(kinds) - KINDS
    if unknown:
        raise ValueError(f"unknown stats kinds: {sorted(unknown)}")
    ids = sorted({int(pk) for pk in contact_ids})
    if not ids:
        return
    now = now or timezone.now()
    workspace = Workspace.objects.get(pk=workspace_id)
    scope = _Scope(workspace_id=workspace_id, contact_ids=ids)
    with transaction.atomic():
        if _lock_rows(ids) < len(ids) and _ensure_rows(scope):
            kinds = ALL_KINDS  # a row that was missing has never been computed
        note_rows_written({ContactStats: len(ids)})
        if connection.vendor == "postgresql":
            _refresh_per_contact(scope, kinds=kinds, workspace=workspace, now=now)
        else:
            figures_sql, params, columns = _figures(scope, kinds=kinds, workspace=workspace, now=now)
            assignments = ", ".join(f"{column} = figures.{column}" for column in columns)
            target_sql, target_params = scope.where(_STATS)
            _execute(
                f"UPDATE {_STATS} SET {assignments} FROM ({figures_sql}) figures"
                f" WHERE {_STATS}.contact_id = figures.contact_id AND {target_sql}",
                [*params, *target_params],
            )


def _refresh_per_contact(scope: _Scope, *, kinds: Collection[str], workspace: Workspace, now: datetime) -> None:
    """The ingest refresh on PostgreSQL: each stats row of the scope gets its figures from a subquery over
    that one contact's rows (`UPDATE ... SET (columns) = (SELECT ...)`).

    No join between the scope and the aggregates is left to the planner: each row's subquery reads the
    contact's orders, items and events through the indexes that lead with the contact, so the cost is
    linear in the number of contacts whatever the statistics say. The set-based form (aggregates joined
    to the scope) is what a whole-workspace rebuild needs, but on a fresh database, whose statistics say
    "empty", PostgreSQL planned it as nested loops re-running the aggregates once per contact: minutes
    for a call of 1,000 orders.
    """
    figures_sql, params, columns = _figures(scope, kinds=kinds, workspace=workspace, now=now, per_contact=True)
    target_sql, target_params = scope.where(_TARGET)
    _execute(
        f"UPDATE {_STATS} AS {_TARGET} SET ({', '.join(columns)}) = ({figures_sql}) WHERE {target_sql}",
        [*params, *target_params],
    )


def recompute_workspace_stats(*, workspace_id: int, now: datetime | None = None) -> int:
    """Rebuild every contact's figures of the workspace in bulk, then the RFM scores.

    Creates the missing stats rows, refreshes PostgreSQL's planner statistics, computes the
    figures of every contact in one pass into a temporary table and applies them in id ranges
    of RECOMPUTE_CHUNK contacts, each committed on its own unless the caller holds a
    transaction. Rows refreshed by ingest after the rebuild started are not overwritten.
    Returns contacts processed.
    """
    now = now or timezone.now()
    started = timezone.now()
    workspace = Workspace.objects.get(pk=workspace_id)
    if not ContactStats.objects.filter(workspace_id=workspace_id).exists():
        return _first_computation(workspace, now=now)
    _ensure_rows(_Scope(workspace_id=workspace_id), computed_at=started)
    analyze_tables(Contact, ContactStats, Order, OrderItem, Product, Event)
    figures_sql, params, columns = _figures(
        _Scope(workspace_id=workspace_id), kinds=ALL_KINDS, workspace=workspace, now=now
    )
    _execute(f"DROP TABLE IF EXISTS {_REBUILD}", [])
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _execute(f"SET LOCAL work_mem = '{RECOMPUTE_WORK_MEM}'", [])
        _execute(f"CREATE TEMPORARY TABLE {_REBUILD} AS {figures_sql}", params)
    _execute(f"CREATE INDEX {_REBUILD}_contact ON {_REBUILD} (contact_id)", [])
    analyze_tables(_REBUILD)
    assignments = ", ".join(f"{column} = r.{column}" for column in columns)
    processed = 0
    for low, high, count in _id_ranges(workspace_id, RECOMPUTE_CHUNK):
        _execute(
            f"UPDATE {_STATS} SET {assignments} FROM {_REBUILD} r"
            f" WHERE {_STATS}.contact_id = r.contact_id AND r.contact_id BETWEEN %s AND %s"
            f" AND {_STATS}.computed_at <= %s",
            [low, high, _dt(started)],
        )
        processed += count
    # After a failure the table is left to the end of the session (or the next rebuild's DROP above).
    _execute(f"DROP TABLE {_REBUILD}", [])
    refresh_rfm(workspace_id=workspace_id)
    analyze_tables(ContactStats)  # every row changed: the figures' real distributions, for segment queries
    return processed


def _first_computation(workspace: Workspace, *, now: datetime) -> int:
    """The first figures of a workspace without any stats rows yet (a bulk load): each contact's row is
    inserted with its figures in one statement, instead of inserted with defaults and then updated."""
    analyze_tables(Contact, Order, OrderItem, Product, Event)
    scope = _Scope(workspace_id=workspace.pk, rows_exist=False)
    figures_sql, params, columns = _figures(scope, kinds=ALL_KINDS, workspace=workspace, now=now)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _execute(f"SET LOCAL work_mem = '{RECOMPUTE_WORK_MEM}'", [])
        selected = ", ".join(f"figures.{column}" for column in columns)
        inserted = _execute(
            f"INSERT INTO {_STATS} (contact_id, workspace_id, {', '.join(columns)})"
            f" SELECT figures.contact_id, %s, {selected} FROM ({figures_sql}) figures",
            [workspace.pk, *params],
        )
    refresh_rfm(workspace_id=workspace.pk)
    analyze_tables(ContactStats)
    return inserted


def refresh_rfm(*, workspace_id: int) -> None:
    """Score recency, frequency and monetary value 1..5 by quintile over the workspace's customers.

    Customers are contacts with at least one order; a score is 1 + floor(5 * (rank - 1) / n)
    where rank is the SQL RANK() of the value (so equal values share a score, the lower
    one) and n the number of customers. Prospects get NULL scores and segment.
    """
    grid_sql, grid_params = _rfm_grid_case("ranked.r", "ranked.f")
    sql = f"""
        WITH ranked AS (
            SELECT s.contact_id,
                   1 + (5 * (RANK() OVER (ORDER BY s.last_order_at) - 1)) / COUNT(*) OVER () AS r,
                   1 + (5 * (RANK() OVER (ORDER BY s.orders_count) - 1)) / COUNT(*) OVER () AS f,
                   1 + (5 * (RANK() OVER (ORDER BY s.total_spent) - 1)) / COUNT(*) OVER () AS m
            FROM {_STATS} s
            WHERE s.workspace_id = %s AND s.orders_count > 0
        ),
        scored AS (SELECT ranked.contact_id, ranked.r, ranked.f, ranked.m, {grid_sql} AS segment FROM ranked)
        UPDATE {_STATS}
        SET rfm_recency = scored.r, rfm_frequency = scored.f, rfm_monetary = scored.m, rfm_segment = scored.segment
        FROM scored
        WHERE {_STATS}.contact_id = scored.contact_id
          AND ({_STATS}.rfm_recency IS NULL OR {_STATS}.rfm_recency <> scored.r
               OR {_STATS}.rfm_frequency IS NULL OR {_STATS}.rfm_frequency <> scored.f
               OR {_STATS}.rfm_monetary IS NULL OR {_STATS}.rfm_monetary <> scored.m
               OR {_STATS}.rfm_segment IS NULL OR {_STATS}.rfm_segment <> scored.segment)
    """
    with transaction.atomic():
        _execute(sql, [workspace_id, *grid_params])
        ContactStats.objects.filter(workspace_id=workspace_id, orders_count=0).exclude(
            rfm_recency=None, rfm_frequency=None, rfm_monetary=None, rfm_segment=None
        ).update(rfm_recency=None, rfm_frequency=None, rfm_monetary=None, rfm_segment=None)


def refresh_time_dependent_stats(*, workspace_id: int, now: datetime | None = None) -> int:
    """Refresh the figures that change with the clock alone: engagement_score and lifecycle_stage.

    Also re-derives loyalty_tier, so that a change of the workspace's thresholds shows up at
    the next scheduled run. Reads the stored order figures and the events of the engagement
    window only, and writes only the rows that change. Returns how many contacts changed.
    """
    now = now or timezone.now()
    workspace = Workspace.objects.get(pk=workspace_id)
    scope = _Scope(workspace_id=workspace_id)
    engagement_sql, engagement_params = _engagement_source(_Rows(scope), workspace=workspace, now=now)
    stage_sql, stage_params = _lifecycle_sql(_Orders.stored("s"), workspace=workspace, now=now)
    tier_sql, tier_params = _loyalty_sql(_Orders.stored("s"), workspace=workspace)
    sql = f"""
        WITH engagement AS ({engagement_sql})
        UPDATE {_STATS}
        SET engagement_score = fresh.score, lifecycle_stage = fresh.stage, loyalty_tier = fresh.tier
        FROM (
            SELECT s.contact_id, {_capped_points("engagement.points")} AS score,
                   {stage_sql} AS stage, {tier_sql} AS tier
            FROM {_STATS} s LEFT JOIN engagement ON engagement.contact_id = s.contact_id
            WHERE s.workspace_id = %s
        ) fresh
        WHERE {_STATS}.contact_id = fresh.contact_id
          AND ({_STATS}.engagement_score <> fresh.score OR {_STATS}.lifecycle_stage <> fresh.stage
               OR {_STATS}.loyalty_tier <> fresh.tier)
    """
    return _execute(sql, [*engagement_params, *stage_params, *tier_params, workspace_id])


def refresh_scheduled_stats(*, workspace_id: int, now: datetime | None = None) -> int:
    """The hourly upkeep of one workspace: clock-dependent figures, then RFM.

    Records the outcome on the workspace (`stats_refreshed_at`, `stats_refresh_error`)
    so that a failing refresh is visible. Returns how many contacts' clock figures changed.
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            changed = refresh_time_dependent_stats(workspace_id=workspace_id, now=now)
            refresh_rfm(workspace_id=workspace_id)
    except Exception as exc:
        Workspace.objects.filter(pk=workspace_id).update(stats_refresh_error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    Workspace.objects.filter(pk=workspace_id).update(stats_refreshed_at=now, stats_refresh_error="")
    return changed


# --- figures derived from the order figures and the clock ------------------------------------------------------


@dataclass(frozen=True)
class _Orders:
    """SQL expressions for a contact's order figures: fresh from this statement's aggregate, or as stored."""

    count: str
    cents: str
    first_at: str
    last_at: str
    previous_at: str

    @classmethod
    def aggregated(cls) -> _Orders:
        return cls(
            "COALESCE(orders_agg.n, 0)",
            "COALESCE(orders_agg.cents, 0)",
            "orders_agg.first_at",
            "orders_agg.last_at",
            "orders_agg.previous_at",
        )

    @classmethod
    def stored(cls, table: str) -> _Orders:
        return cls(
            f"{table}.orders_count",
            f"CAST(ROUND({table}.total_spent * 100) AS BIGINT)",
            f"{table}.first_order_at",
            f"{table}.last_order_at",
            f"{table}.previous_order_at",
        )


def _lifecycle_sql(orders: _Orders, *, workspace: Workspace, now: datetime) -> tuple[str, list]:
    """lifecycle_stage; the first matching rule wins.

    prospect: no orders. new: first order at most new_customer_days ago. returning: last
    order at most active_days ago and more than active_days after the order before it.
    active: last order at most active_days ago. inactive: at most churn_days ago. churned.
    """
    active_since = _dt(now - timedelta(days=workspace.active_days))
    sql = f"""CASE
        WHEN {orders.count} = 0 THEN %s
        WHEN {orders.first_at} >= %s THEN %s
        WHEN {orders.last_at} >= %s AND {orders.previous_at} IS NOT NULL
             AND {orders.last_at} > {_plus_days(orders.previous_at, workspace.active_days)} THEN %s
        WHEN {orders.last_at} >= %s THEN %s
        WHEN {orders.last_at} >= %s THEN %s
        ELSE %s END"""
    return sql, [
        str(Lifecycle.PROSPECT),
        _dt(now - timedelta(days=workspace.new_customer_days)),
        str(Lifecycle.NEW),
        active_since,
        str(Lifecycle.RETURNING),
        active_since,
        str(Lifecycle.ACTIVE),
        _dt(now - timedelta(days=workspace.churn_days)),
        str(Lifecycle.INACTIVE),
        str(Lifecycle.CHURNED),
    ]


def _loyalty_sql(orders: _Orders, *, workspace: Workspace) -> tuple[str, list]:
    """loyalty_tier: none without orders, then bronze / silver / gold by total spent against the thresholds."""
    sql = f"""CASE WHEN {orders.count} = 0 THEN %s WHEN {orders.cents} < %s THEN %s
        WHEN {orders.cents} < %s THEN %s ELSE %s END"""
    silver = int(workspace.loyalty_silver_threshold * 100)
    gold = int(workspace.loyalty_gold_threshold * 100)
    return sql, [str(Tier.NONE), silver, str(Tier.BRONZE), gold, str(Tier.SILVER), str(Tier.GOLD)]


def _plus_days(expression: str, days: int) -> str:
    if connection.vendor == "postgresql":
        return f"({expression} + INTERVAL '{int(days)} days')"
    # Django stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]': shift the whole seconds and keep
    # the fraction as written, which stays exact where julianday() arithmetic would round.
    return (
        f"(strftime('%%Y-%%m-%%d %%H:%%M:%%S', substr({expression}, 1, 19), '+{int(days)} days')"
        f" || substr({expression}, 20))"
    )


# --- aggregate figures (SQL) ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """Which contacts a statement covers: a workspace, optionally narrowed to ids."""

    workspace_id: int
    contact_ids: list[int] | None = None
    # False: the contacts have no stats rows yet (a first computation reads them from the contacts).
    rows_exist: bool = True

    def where(self, alias: str, column: str = "contact_id") -> tuple[str, list]:
        """The scope's rows of a table with a workspace column (contacts, stats rows, orders, events)."""
        sql, params = f"{alias}.workspace_id = %s", [self.workspace_id]
        if self.contact_ids is not None:
            ids_sql, ids_params = _ids_in(f"{alias}.{column}", self.contact_ids)
            sql, params = f"{sql} AND {ids_sql}", params + ids_params
        return sql, params


@dataclass(frozen=True)
class _Rows:
    """How the aggregate sources find their rows: all of the scope's at once, or one contact's at a time.

    Set-based (`per_contact` False): each source is a CTE aggregating the scope's rows, grouped by contact
    and joined to the scope. Per contact: each source is a LATERAL subquery over the rows of the scope's
    current contact, found through an index that leads with the contact.
    """

    scope: _Scope
    per_contact: bool = False

    def of(self, alias: str) -> tuple[str, list]:
        """The WHERE of a source's orders or events."""
        if self.per_contact:
            return f"{alias}.contact_id = scope.contact_id", []
        if self.scope.contact_ids is not None:
            # By contact alone: the aggregates are joined to the workspace's stats rows anyway, and an
            # index on (contact, ...) then answers without the heap.
            return _ids_in(f"{alias}.contact_id", self.scope.contact_ids)
        return self.scope.where(alias)


_STORED_COLUMNS = (
    "orders_count",
    "total_spent",
    "first_order_at",
    "last_order_at",
    "previous_order_at",
    "rfm_recency",
    "rfm_frequency",
    "rfm_monetary",
    "rfm_segment",
)
_TARGET = "target"  # alias of the stats row being updated in the per-contact form

# Sources with one row per contact that the figures read (item_spend is read by top_category/top_producer).
_JOINED = ("orders_agg", "top_category", "top_producer", "events_agg", "cart", "engagement")


def _figures(
    scope: _Scope, *, kinds: Collection[str], workspace: Workspace, now: datetime, per_contact: bool = False
) -> tuple[str, list, list[str]]:
    """A query with the fresh value of each figure of the scope's stats rows, and the figure columns.

    Set-based (default): one row per stats row of the scope, `contact_id` first; each aggregate is
    computed once, restricted to the scope, and joined by contact. `per_contact`: the row of ONE contact,
    the stats row `target` of an enclosing `UPDATE ... AS target` (PostgreSQL only: LATERAL). The figures
    `kinds` leaves out are not selected (the stored ones stay). Returns the SQL, its parameters and the
    figure columns.
    """
    rows = _Rows(scope, per_contact)
    orders, events = "orders" in kinds, "events" in kinds
    stored = ", ".join(f"s.{column}" for column in _STORED_COLUMNS)
    if per_contact:
        scope_sql, scope_params = f"SELECT {_TARGET}.contact_id, {stored.replace('s.', f'{_TARGET}.')}", []
    elif not scope.rows_exist:
        nothing_stored = ", ".join(
            f"CAST(NULL AS {ContactStats._meta.get_field(column).db_type(connection)}) AS {column}"
            for column in _STORED_COLUMNS
        )
        where_sql, scope_params = scope.where("c", column="id")
        scope_sql = f"SELECT c.id AS contact_id, {nothing_stored} FROM {_CONTACT} c WHERE {where_sql}"
    else:
        where_sql, scope_params = scope.where("s")
        scope_sql = f"SELECT s.contact_id, {stored} FROM {_STATS} s WHERE {where_sql}"
    sources: list[tuple[str, str, list]] = []  # name, body, parameters (in order of use)
    figures: list[tuple[str, str, list]] = []  # column, expression, parameters

    if orders:
        sources += _order_sources(rows)
        figures += [
            ("orders_count", "COALESCE(orders_agg.n, 0)", []),
            ("total_spent", "COALESCE(orders_agg.cents, 0) / 100.0", []),
            # Half away from zero in integer arithmetic, like PostgreSQL's ROUND and Decimal's ROUND_HALF_UP.
            (
                "avg_order_value",
                "CASE WHEN orders_agg.n IS NULL THEN NULL"
                " WHEN orders_agg.cents >= 0 THEN ((2 * orders_agg.cents + orders_agg.n) / (2 * orders_agg.n)) / 100.0"
                " ELSE -(((orders_agg.n - 2 * orders_agg.cents) / (2 * orders_agg.n)) / 100.0) END",
                [],
            ),
            ("first_order_at", "orders_agg.first_at", []),
            ("last_order_at", "orders_agg.last_at", []),
            ("previous_order_at", "orders_agg.previous_at", []),
            ("top_category", "top_category.name", []),
            ("top_producer", "top_producer.name", []),
        ]
        # RFM scores are workspace-wide (refresh_rfm), but a contact left without orders loses them at once.
        figures += [
            (column, f"CASE WHEN orders_agg.n IS NULL THEN NULL ELSE scope.{column} END", [])
            for column in ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment")
        ]
    if events:
        # One pass over the contacts' events; cart and engagement come with it.
        event_sql, event_params = _events_source(rows, workspace=workspace, now=now, last_order_from_aggregate=orders)
        sources.append(("events_agg", event_sql, event_params))
        figures += [
            ("last_seen_at", "events_agg.last_seen", []),
            ("last_email_open_at", "events_agg.last_open", []),
            ("last_email_click_at", "events_agg.last_click", []),
            ("cart_open_since", "events_agg.cart_since", []),
            ("engagement_score", _capped_points("events_agg.points"), []),
            (
                "preferred_device",
                "CASE WHEN events_agg.on_mobile = 1 AND events_agg.on_desktop = 1 THEN %s"
                " WHEN events_agg.on_mobile = 1 THEN %s WHEN events_agg.on_desktop = 1 THEN %s ELSE %s END",
                [
                    str(ContactStats.Device.CROSS_PLATFORM),
                    str(ContactStats.Device.MOBILE_ONLY),
                    str(ContactStats.Device.DESKTOP_ONLY),
                    str(ContactStats.Device.UNKNOWN),
                ],
            ),
        ]
    else:
        # Events unchanged: the cart only if the last order may have moved; engagement for the clock.
        if orders:
            cart_sql, cart_params = _cart_source(rows)
            sources.append(("cart", cart_sql, cart_params))
            figures.append(("cart_open_since", "cart.since", []))
        engagement_sql, engagement_params = _engagement_source(rows, workspace=workspace, now=now)
        sources.append(("engagement", engagement_sql, engagement_params))
        figures.append(("engagement_score", _capped_points("engagement.points"), []))
    order_figures = _Orders.aggregated() if orders else _Orders.stored("scope")
    stage_sql, stage_params = _lifecycle_sql(order_figures, workspace=workspace, now=now)
    tier_sql, tier_params = _loyalty_sql(order_figures, workspace=workspace)
    figures += [("lifecycle_stage", stage_sql, stage_params), ("loyalty_tier", tier_sql, tier_params)]
    figures.append(("computed_at", "%s", [_dt(timezone.now())]))  # the wall clock: see recompute_workspace_stats

    select = ", ".join(f"{expression} AS {column}" for column, expression, _ in figures)
    figure_params = [p for _, _, ps in figures for p in ps]
    source_params = [p for _, _, ps in sources for p in ps]
    if per_contact:
        laterals = " ".join(
            f"LEFT JOIN LATERAL ({body}) {name} ON TRUE" for name, body, _ in sources if name in _JOINED
        )
        sql = f"SELECT {select} FROM ({scope_sql}) scope {laterals}"
        return sql, [*figure_params, *scope_params, *source_params], [column for column, _, _ in figures]
    joins = " ".join(
        f"LEFT JOIN {name} ON {name}.contact_id = scope.contact_id" for name, _, _ in sources if name in _JOINED
    )
    ctes = ", ".join(f"{name} AS ({body})" for name, body, _ in [("scope", scope_sql, scope_params), *sources])
    sql = f"WITH {ctes} SELECT scope.contact_id, {select} FROM scope {joins}"
    return sql, [*scope_params, *source_params, *figure_params], [column for column, _, _ in figures]


def _order_sources(rows: _Rows) -> list[tuple[str, str, list]]:
    where, params = rows.of("o")
    orders_agg = f"""
        SELECT o.contact_id,
               COUNT(*) AS n,
               CAST(SUM(CAST(ROUND(o.total * 100) AS BIGINT)) AS BIGINT) AS cents,
               MIN(o.ordered_at) AS first_at,
               MAX(o.ordered_at) AS last_at,
               MAX(CASE WHEN o.ordered_at < o.latest THEN o.ordered_at END) AS previous_at
        FROM (
            SELECT o.contact_id, o.total, o.ordered_at, MAX(o.ordered_at) OVER (PARTITION BY o.contact_id) AS latest
            FROM {_ORDER} o WHERE {where}
        ) o
        GROUP BY o.contact_id
    """
    item_spend = f"""
        SELECT o.contact_id, p.category, p.producer,
               SUM(CAST(ROUND(i.quantity * i.unit_price * 100) AS BIGINT)) AS cents
        FROM {_ITEM} i
        JOIN {_ORDER} o ON o.id = i.order_id
        JOIN {_PRODUCT} p ON p.id = i.product_id
        WHERE {where}
        GROUP BY o.contact_id, p.category, p.producer
    """
    item_params = params
    if not rows.per_contact and rows.scope.contact_ids is None:
        # A whole workspace: the items carry their order's workspace and contact, so the 10 million items of
        # a million contacts are not joined with their 5 million orders.
        item_where, item_params = rows.scope.where("i")
        item_spend = f"""
            SELECT i.contact_id, p.category, p.producer,
                   SUM(CAST(ROUND(i.quantity * i.unit_price * 100) AS BIGINT)) AS cents
            FROM {_ITEM} i
            JOIN {_PRODUCT} p ON p.id = i.product_id
            WHERE {item_where}
            GROUP BY i.contact_id, p.category, p.producer
        """
    if rows.per_contact:
        # No CTE to share: each top_* reads the contact's items itself (a few rows through the indexes).
        return [
            ("orders_agg", orders_agg, params),
            ("top_category", _top_by_spend("category", f"({item_spend}) item_spend"), params),
            ("top_producer", _top_by_spend("producer", f"({item_spend}) item_spend"), params),
        ]
    return [
        ("orders_agg", orders_agg, params),
        ("item_spend", item_spend, item_params),
        ("top_category", _top_by_spend("category", "item_spend"), []),
        ("top_producer", _top_by_spend("producer", "item_spend"), []),
    ]


def _top_by_spend(column: str, item_spend: str) -> str:
    """The value of `column` with the highest item spend per contact; ties go to the first in code point order."""
    collate = ' COLLATE "C"' if connection.vendor == "postgresql" else ""
    return f"""
        SELECT ranked.contact_id, ranked.name FROM (
            SELECT contact_id, {column} AS name,
                   ROW_NUMBER() OVER (PARTITION BY contact_id ORDER BY SUM(cents) DESC, {column}{collate} ASC) AS rn
            FROM {item_spend}
            WHERE {column} IS NOT NULL AND {column} <> ''
            GROUP BY contact_id, {column}
        ) ranked
        WHERE ranked.rn = 1
    """


def _events_source(
    rows: _Rows, *, workspace: Workspace, now: datetime, last_order_from_aggregate: bool
) -> tuple[str, list]:
    where, params = rows.of("e")
    last_join, last_at = _last_order(rows, from_aggregate=last_order_from_aggregate)
    points_sql, points_params = _points(workspace, now)
    mobile = ", ".join(["%s"] * len(MOBILE_DEVICES))
    desktop = ", ".join(["%s"] * len(DESKTOP_DEVICES))
    sql = f"""
        SELECT e.contact_id,
               MAX(e.occurred_at) AS last_seen,
               MAX(CASE WHEN e.type = %s THEN e.occurred_at END) AS last_open,
               MAX(CASE WHEN e.type = %s THEN e.occurred_at END) AS last_click,
               MAX(CASE WHEN e.device IN ({mobile}) THEN 1 ELSE 0 END) AS on_mobile,
               MAX(CASE WHEN e.device IN ({desktop}) THEN 1 ELSE 0 END) AS on_desktop,
               MIN(CASE WHEN e.type = %s AND ({last_at} IS NULL OR e.occurred_at > {last_at})
                        THEN e.occurred_at END) AS cart_since,
               SUM({points_sql}) AS points
        FROM {_EVENT} e {last_join}
        WHERE {where}
        GROUP BY e.contact_id
    """
    return sql, [
        "email_open",
        "email_click",
        *MOBILE_DEVICES,
        *DESKTOP_DEVICES,
        "cart_add",
        *points_params,
        *params,
    ]


def _cart_source(rows: _Rows) -> tuple[str, list]:
    """First cart_add after the last order, for a refresh where orders changed but events did not."""
    where, params = rows.of("e")
    last_join, last_at = _last_order(rows, from_aggregate=True)
    sql = f"""
        SELECT e.contact_id, MIN(e.occurred_at) AS since
        FROM {_EVENT} e {last_join}
        WHERE {where} AND e.type = %s AND ({last_at} IS NULL OR e.occurred_at > {last_at})
        GROUP BY e.contact_id
    """
    return sql, [*params, "cart_add"]


def _last_order(rows: _Rows, *, from_aggregate: bool) -> tuple[str, str]:
    """The join and the expression of the contact's last order time: fresh from this statement's
    aggregate when orders changed, else as stored (which is then current). Per contact, both are
    already in reach (an earlier LATERAL source, or the scope row): no join."""
    if rows.per_contact:
        return "", "orders_agg.last_at" if from_aggregate else "scope.last_order_at"
    if from_aggregate:
        return "LEFT JOIN orders_agg lo ON lo.contact_id = e.contact_id", "lo.last_at"
    return "LEFT JOIN scope lo ON lo.contact_id = e.contact_id", "lo.last_order_at"


def _engagement_source(rows: _Rows, *, workspace: Workspace, now: datetime) -> tuple[str, list]:
    """Engagement points per contact from the weighted events of the window alone, which the indexes on
    (workspace, type, time) and (contact, type, time) find without reading the rest."""
    where, params = rows.of("e")
    points_sql, points_params = _points(workspace, now)
    window_start = now - timedelta(days=workspace.engagement_window_days)
    types = ", ".join(["%s"] * len(ENGAGEMENT_POINTS))
    sql = f"""
        SELECT e.contact_id, SUM({points_sql}) AS points
        FROM {_EVENT} e
        WHERE {where} AND e.type IN ({types}) AND e.occurred_at >= %s AND e.occurred_at <= %s
        GROUP BY e.contact_id
    """
    return sql, [*points_params, *params, *ENGAGEMENT_POINTS, _dt(window_start), _dt(now)]


def _points(workspace: Workspace, now: datetime) -> tuple[str, list]:
    """Engagement points of one event: its weight when now - engagement_window_days <= occurred_at <= now."""
    weights = " ".join(f"WHEN %s THEN {int(points)}" for points in ENGAGEMENT_POINTS.values())
    sql = f"CASE WHEN e.occurred_at >= %s AND e.occurred_at <= %s THEN CASE e.type {weights} ELSE 0 END ELSE 0 END"
    window_start = now - timedelta(days=workspace.engagement_window_days)
    return sql, [_dt(window_start), _dt(now), *ENGAGEMENT_POINTS]


def _capped_points(column: str) -> str:
    return f"CASE WHEN COALESCE({column}, 0) > {ENGAGEMENT_CAP} THEN {ENGAGEMENT_CAP} ELSE COALESCE({column}, 0) END"


def _rfm_grid_case(r: str, f: str) -> tuple[str, list]:
    whens, params = [], []
    for recency, row in RFM_GRID.items():
        for frequency, segment in enumerate(row, start=1):
            whens.append(f"WHEN {r} = {int(recency)} AND {f} = {frequency} THEN %s")
            params.append(str(segment))
    return "CASE " + " ".join(whens) + " END", params


# --- plumbing ---------------------------------------------------------------------------------------------------


def _ensure_rows(scope: _Scope, *, computed_at: datetime | None = None) -> int:
    """Insert a ContactStats row with the model's defaults for every contact of the scope that lacks one."""
    columns, values = ["contact_id", "workspace_id"], []
    for field in ContactStats._meta.concrete_fields:
        if field.column in ("contact_id", "workspace_id"):
            continue
        default = (computed_at or timezone.now()) if field.name == "computed_at" else field.get_default()
        columns.append(field.column)
        values.append(field.get_db_prep_save(default, connection))
    where, params = scope.where("c", column="id")
    # ON CONFLICT alone skips the existing rows. A NOT EXISTS on the table being filled could be planned,
    # when its statistics say "empty", as a nested loop rescanning it while it grows: quadratic.
    sql = f"""
        INSERT INTO {_STATS} ({", ".join(columns)})
        SELECT c.id, c.workspace_id, {", ".join(["%s"] * len(values))}
        FROM {_CONTACT} c
        WHERE {where}
        ON CONFLICT DO NOTHING
    """
    return _execute(sql, [*values, *params])


def _lock_rows(ids: list[int]) -> int:
    """Lock the existing stats rows of these contacts in id order, so two concurrent ingests of
    overlapping contacts queue instead of deadlocking (UPDATE ... FROM locks rows in plan order).
    Returns how many exist, or 0 where there is nothing to lock (SQLite serialises writers)."""
    if connection.vendor != "postgresql":
        return 0
    ids_sql, ids_params = _ids_in("contact_id", ids)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT contact_id FROM {_STATS} WHERE {ids_sql} ORDER BY contact_id FOR UPDATE", ids_params)
        return len(cursor.fetchall())


def _id_ranges(workspace_id: int, size: int) -> list[tuple[int, int, int]]:
    """(first id, last id, count) of consecutive runs of `size` contacts of the workspace, in id order."""
    sql = f"""
        SELECT MIN(id), MAX(id), COUNT(*) FROM (
            SELECT id, (ROW_NUMBER() OVER (ORDER BY id) - 1) / %s AS bucket FROM {_CONTACT} WHERE workspace_id = %s
        ) numbered
        GROUP BY bucket ORDER BY bucket
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [size, workspace_id])
        return [(int(low), int(high), int(count)) for low, high, count in cursor.fetchall()]


def _ids_in(column: str, ids: list[int]) -> tuple[str, list]:
    # One parameter whatever the number of ids: SQLite limits bound variables.
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [ids]
    return f"{column} IN (SELECT value FROM json_each(%s))", [json.dumps(ids)]


def _dt(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _execute(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount < 0 and connection.vendor == "sqlite":
            # Python's sqlite3 reports -1 for DML that starts with WITH.
            cursor.execute("SELECT changes()")
            return cursor.fetchone()[0]
        return max(cursor.rowcount, 0)
