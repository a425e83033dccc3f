"""The SQL an expert would write by hand for every definition `bench.segments` measures.

`HAND_WRITTEN` maps a benchmark name ("template: <key>", "contract: ...", "extra: ...") to a function of a
`HandContext` returning `(sql, params)`: a `SELECT count(*) ...` with `%s` placeholders that counts exactly the
contacts the compiled definition selects. The benchmark reports compiled time / hand-written time for each.

How an expert writes them for PostgreSQL at a million contacts (5M orders, 10M items, 20M events):

- The stored figures (`contacts_contactstats`, one row per contact) answer every condition they record exactly:
  they equal the history (orders_count, total_spent, last_order_at, last_email_open_at, last_seen_at, ...) and
  nothing is dated after now, so "opened an email in the last 7 days" is `last_email_open_at >= now - 7 days`.
  `avg_order_value` is rounded to cents and is never used for an exact average.
- Contacts are counted from the table that holds the answer; `contacts_contact` is joined only for a contact
  column (email_status, country).
- Item conditions read the items alone: each item carries its order's contact and time, so the items of the
  matching products in the window are ranges of the covering (product, ordered_at) index, grouped by contact.
- Windows `{"last": N, "unit": U}` are [now - N units, now], with the start from `segments_app.timespec` (calendar
  months), so the bounds equal the compiler's.
- Referenced segments are inlined as their rules (evaluated at the same now), never read from stored memberships:
  `engaged_openers_id` is the engaged_openers_7d template, `paid_only_id` the paid_source_only template.
- Missing values: `not_in_last` (and a windowed `count eq 0`) is true for a missing time; "source not_in [...]" is
  true for a NULL or empty source; a negated rule is written NULL-safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from segments_app.timespec import subtract


@dataclass(frozen=True)
class HandContext:
    """What a hand-written query depends on: the workspace, the one "now" of the evaluation, and the ids of the
    two saved segments the definitions refer to (their rules are inlined in the SQL, the ids are not read)."""

    workspace_id: int
    now: datetime
    engaged_openers_id: int
    paid_only_id: int

    def ago(self, amount: int, unit: str) -> datetime:
        """Start of the window `{"last": amount, "unit": unit}` ending now (calendar months as the compiler)."""
        return subtract(self.now, amount, unit)


HandQuery = Callable[[HandContext], tuple[str, list]]
HAND_WRITTEN: dict[str, HandQuery] = {}


def _hand(*names: str) -> Callable[[HandQuery], HandQuery]:
    """Register one hand-written query under the benchmark names of the definitions it answers."""

    def register(query: HandQuery) -> HandQuery:
        for name in names:
            if name in HAND_WRITTEN:
                raise ValueError(f"{name!r} has two hand-written queries")
            HAND_WRITTEN[name] = query
        return query

    return register


def _figure(condition: str, *values: object) -> HandQuery:
    """A condition on the figures alone: an index-only scan of the figure's (workspace, figure) index where it has
    one, a scan of the figures otherwise (preferred_device, loyalty_tier and rfm_monetary have none)."""

    def query(ctx: HandContext) -> tuple[str, list]:
        return f"SELECT count(*) FROM contacts_contactstats WHERE workspace_id = %s AND {condition}", [
            ctx.workspace_id,
            *values,
        ]

    return query


def _not_in_last(column: str, amount: int, unit: str) -> HandQuery:
    """`column` missing or older than the window: two disjoint index-only ranges of the (workspace, column) index
    (an OR of IS NULL and a range would read the table)."""

    def query(ctx: HandContext) -> tuple[str, list]:
        return (
            f"""
            SELECT count(*) FROM (
                SELECT 1 FROM contacts_contactstats WHERE workspace_id = %s AND {column} IS NULL
                UNION ALL
                SELECT 1 FROM contacts_contactstats WHERE workspace_id = %s AND {column} < %s
            ) quiet
            """,
            [ctx.workspace_id, ctx.workspace_id, ctx.ago(amount, unit)],
        )

    return query


# --- item conditions ------------------------------------------------------------------------------------------


# Sum of the Acme items per contact over the window: one range of the (product, ordered_at) index per Acme
# product, grouped by the contact the items carry.
@_hand("template: producer_upsell", "contract: up-selling")
def acme_upsell(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM (
            SELECT i.contact_id
            FROM contacts_product p
            JOIN contacts_orderitem i ON i.product_id = p.id
            WHERE p.workspace_id = %s AND p.producer = 'Acme'
              AND i.ordered_at >= %s AND i.ordered_at <= %s
            GROUP BY i.contact_id
            HAVING sum(i.quantity * i.unit_price) > 300
        ) buyers
        """,
        [ctx.workspace_id, ctx.ago(6, "months"), ctx.now],
    )


# Buyers of SKU-1 in the last month (its items in the window), less everyone who ever bought SKU-2 or SKU-3
# (an anti-join with the items of those two products).
@_hand("template: cross_sell_accessories", "contract: cross-selling")
def cross_sell(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM (
            SELECT DISTINCT i.contact_id
            FROM contacts_product p
            JOIN contacts_orderitem i ON i.product_id = p.id
            WHERE p.workspace_id = %s AND p.sku = 'SKU-1'
              AND i.ordered_at >= %s AND i.ordered_at <= %s
              AND NOT EXISTS (
                SELECT 1 FROM contacts_product q JOIN contacts_orderitem j ON j.product_id = q.id
                WHERE q.workspace_id = %s AND q.sku IN ('SKU-2', 'SKU-3') AND j.contact_id = i.contact_id)
        ) buyers
        """,
        [ctx.workspace_id, ctx.ago(1, "months"), ctx.now, ctx.workspace_id],
    )


# Two different orders with an Accessories item in 12 months: the smallest and largest order id differ.
@_hand("template: product_affinity_accessories")
def accessories_affinity(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM (
            SELECT i.contact_id
            FROM contacts_product p
            JOIN contacts_orderitem i ON i.product_id = p.id
            WHERE p.workspace_id = %s AND p.category = 'Accessories'
              AND i.ordered_at >= %s AND i.ordered_at <= %s
            GROUP BY i.contact_id
            HAVING min(i.order_id) <> max(i.order_id)
        ) buyers
        """,
        [ctx.workspace_id, ctx.ago(12, "months"), ctx.now],
    )


# Any Accessories item over 50, ever: the covering index carries unit_price and the contact.
@_hand("extra: Accessories items over 50")
def accessories_over_50(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM (
            SELECT DISTINCT i.contact_id
            FROM contacts_product p
            JOIN contacts_orderitem i ON i.product_id = p.id
            WHERE p.workspace_id = %s AND p.category = 'Accessories' AND i.unit_price > 50
        ) buyers
        """,
        [ctx.workspace_id],
    )


@_hand("extra: Accessories spend in 12 months at least 200")
def accessories_spend(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM (
            SELECT i.contact_id
            FROM contacts_product p
            JOIN contacts_orderitem i ON i.product_id = p.id
            WHERE p.workspace_id = %s AND p.category = 'Accessories'
              AND i.ordered_at >= %s AND i.ordered_at <= %s
            GROUP BY i.contact_id
            HAVING sum(i.quantity * i.unit_price) >= 200
        ) buyers
        """,
        [ctx.workspace_id, ctx.ago(12, "months"), ctx.now],
    )


# --- orders ---------------------------------------------------------------------------------------------------


# Ordered, and no order whose source is missing (NULL or '') or other than paid_search / paid_social.
@_hand("template: paid_source_only", "contract: paid sources only")
def paid_only(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM contacts_contactstats s
        WHERE s.workspace_id = %s AND s.orders_count >= 1
          AND NOT EXISTS (
            SELECT 1 FROM contacts_order o
            WHERE o.contact_id = s.contact_id
              AND (o.source IS NULL OR o.source NOT IN ('paid_search', 'paid_social')))
        """,
        [ctx.workspace_id],
    )


# At least 3 orders in 6 months: the workspace's orders in the window, counted per contact (a parallel scan and
# a hash aggregate; probing each contact's (contact, ordered_at) entries costs one random read per candidate).
@_hand("template: frequent_buyers")
def frequent_buyers(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM (
            SELECT o.contact_id FROM contacts_order o
            WHERE o.workspace_id = %s AND o.ordered_at >= %s AND o.ordered_at <= %s
            GROUP BY o.contact_id
            HAVING count(*) >= 3
        ) buyers
        """,
        [ctx.workspace_id, ctx.ago(6, "months"), ctx.now],
    )


# No order in [now - 30 days, now]: the latest order is older, or there is none.
HAND_WRITTEN["extra: no order in 30 days"] = _not_in_last("last_order_at", 30, "days")


# Three orders or more (so a latest order exists) and the latest more than 90 days old.
@_hand("template: loyal_gone_quiet", "contract: at risk")
def loyal_gone_quiet(ctx: HandContext) -> tuple[str, list]:
    return _figure("orders_count >= 3 AND last_order_at < %s", ctx.ago(90, "days"))(ctx)


for _amount in (100, 500, 1000):
    HAND_WRITTEN[f"template: spent_{_amount}_plus"] = _figure(f"total_spent >= {_amount}")
HAND_WRITTEN["contract: loyalty threshold"] = _figure("total_spent BETWEEN 500 AND 1000")
HAND_WRITTEN["template: one_time_buyers"] = _figure("orders_count = 1")
HAND_WRITTEN["template: repeat_buyers"] = _figure("orders_count >= 2")


# --- other figures --------------------------------------------------------------------------------------------

for _stage in ("new", "active", "inactive", "churned", "returning"):
    HAND_WRITTEN[f"template: lifecycle_{_stage}"] = _figure(f"lifecycle_stage = '{_stage}'")
for _device in ("mobile_only", "desktop_only", "cross_platform"):
    HAND_WRITTEN[f"template: {_device}_shoppers"] = _figure(f"preferred_device = '{_device}' AND orders_count >= 1")
for _tier in ("bronze", "silver", "gold"):
    HAND_WRITTEN[f"template: tier_{_tier}"] = _figure(f"loyalty_tier = '{_tier}'")
HAND_WRITTEN["template: high_value"] = _figure("rfm_monetary = 5")
HAND_WRITTEN["template: rfm_champions"] = _figure("rfm_segment = 'champions'")
HAND_WRITTEN["template: rfm_at_risk"] = _figure("rfm_segment = 'at_risk'")


@_hand("template: cart_abandoners_48h", "contract: cart abandoners 48 h")
def cart_abandoners(ctx: HandContext) -> tuple[str, list]:
    return _figure("cart_open_since >= %s AND cart_open_since <= %s", ctx.ago(48, "hours"), ctx.now)(ctx)


HAND_WRITTEN["template: inactive_30_days"] = _not_in_last("last_seen_at", 30, "days")
HAND_WRITTEN["template: inactive_90_days"] = _not_in_last("last_seen_at", 90, "days")


# --- events ---------------------------------------------------------------------------------------------------


# The distinct contacts of the page views in the window: an index-only range of (workspace, type, occurred_at).
@_hand("template: recent_visitors")
def recent_visitors(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM (
            SELECT DISTINCT e.contact_id FROM contacts_event e
            WHERE e.workspace_id = %s AND e.type = 'page_view' AND e.occurred_at >= %s AND e.occurred_at <= %s
        ) visitors
        """,
        [ctx.workspace_id, ctx.ago(7, "days"), ctx.now],
    )


# A cart_add whose property sku is the JSON string "SKU-1" (->> gives 'SKU-1' for that string only).
@_hand("extra: put SKU-1 in the cart")
def sku1_in_cart(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM (
            SELECT DISTINCT e.contact_id FROM contacts_event e
            WHERE e.workspace_id = %s AND e.type = 'cart_add' AND e.properties ->> 'sku' = 'SKU-1'
        ) carts
        """,
        [ctx.workspace_id],
    )


# An email_open in the last 7 days is exactly last_email_open_at in [now - 7 days, now].
@_hand("extra: opened an email in 7 days")
def opened_7d(ctx: HandContext) -> tuple[str, list]:
    return _figure("last_email_open_at >= %s AND last_email_open_at <= %s", ctx.ago(7, "days"), ctx.now)(ctx)


# The engaged_openers_7d rule: opened in 7 days (the figure's index) and subscribed (the contact, by its key).
@_hand("template: engaged_openers_7d")
def engaged_openers(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM contacts_contactstats s
        JOIN contacts_contact c ON c.id = s.contact_id
        WHERE s.workspace_id = %s AND s.last_email_open_at >= %s AND s.last_email_open_at <= %s
          AND c.email_status = 'subscribed'
        """,
        [ctx.workspace_id, ctx.ago(7, "days"), ctx.now],
    )


# Opened in 7 days, subscribed, and in Poland or tagged vip.
@_hand("contract: engaged and reachable")
def engaged_and_reachable(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM contacts_contactstats s
        JOIN contacts_contact c ON c.id = s.contact_id
        WHERE s.workspace_id = %s AND s.last_email_open_at >= %s AND s.last_email_open_at <= %s
          AND c.email_status = 'subscribed'
          AND (c.country = 'PL' OR EXISTS (
                SELECT 1 FROM contacts_contacttag ct JOIN contacts_tag t ON t.id = ct.tag_id
                WHERE ct.contact_id = c.id AND t.workspace_id = %s AND t.name = 'vip'))
        """,
        [ctx.workspace_id, ctx.ago(7, "days"), ctx.now, ctx.workspace_id],
    )


# --- segment references, inlined -------------------------------------------------------------------------------


# Mobile-only and not an engaged opener (segment ctx.engaged_openers_id): not subscribed (a missing status
# included), or no email opened in the last 7 days.
@_hand("contract: mobile-only, not in a segment")
def mobile_only_not_engaged(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM contacts_contactstats s
        JOIN contacts_contact c ON c.id = s.contact_id
        WHERE s.workspace_id = %s AND s.preferred_device = 'mobile_only'
          AND (c.email_status IS DISTINCT FROM 'subscribed'
               OR s.last_email_open_at IS NULL OR s.last_email_open_at < %s)
        """,
        [ctx.workspace_id, ctx.ago(7, "days")],
    )


# Active or returning, and tagged vip or not paid-only (segment ctx.paid_only_id: ordered, and every order from
# paid_search / paid_social), i.e. no order at all or an order from another or a missing source.
@_hand("extra: active and (vip or not paid-only)")
def active_vip_or_not_paid_only(ctx: HandContext) -> tuple[str, list]:
    return (
        """
        SELECT count(*) FROM contacts_contactstats s
        WHERE s.workspace_id = %s AND s.lifecycle_stage IN ('active', 'returning')
          AND (s.orders_count = 0
               OR s.contact_id IN (
                    SELECT ct.contact_id FROM contacts_contacttag ct JOIN contacts_tag t ON t.id = ct.tag_id
                    WHERE t.workspace_id = %s AND t.name = 'vip')
               OR EXISTS (
                    SELECT 1 FROM contacts_order o
                    WHERE o.contact_id = s.contact_id
                      AND (o.source IS NULL OR o.source NOT IN ('paid_search', 'paid_social'))))
        """,
        [ctx.workspace_id, ctx.workspace_id],
    )
