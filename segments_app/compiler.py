"""Definition tree -> one `Q` over the workspace's contacts (contract: docs/segment-definition.md).

Pure: no writes and no queries while compiling, the input is never mutated, and
anything it does not know raises `CompileError` (a dropped condition would silently
widen a segment). Validate with `definition.parse_definition` first.

Two-valued logic is built in rather than hoped for: every condition compiles to SQL
that is TRUE or FALSE for every contact, never NULL, so `none` (NOT) is the exact
complement of `any`. The recipe, used for every value test:

- An operator that is false on a missing value compiles to "present AND test"
  (FALSE AND NULL is FALSE in SQL).
- An operator that is true on a missing value (`ne`, `not_in`, `not_contains`,
  `is_not_set`, `is_false`, `not_in_last`) compiles to NOT of its false-on-missing
  partner (`eq`, `in`, `contains`, `is_set`, `is_true`, "at or after the span's start").
- Rows of other tables never JOIN into the contact query. Computed figures are a
  semi-join into `ContactStats` (one row per contact, pk = contact_id). Orders, items,
  events and tags compile to `pk IN (SELECT contact_id ... [GROUP BY ... HAVING ...])`
  or its negation; the id column is never NULL, so IN and NOT IN stay two-valued.
- An aggregate over no rows is decided in Python: count and sum over nothing are 0,
  the other measures are missing. When the condition holds for that empty value the
  contacts are "NOT IN (contacts whose rows fail it)", otherwise "IN (contacts whose
  rows pass it)".

Exact numbers on both databases: money is compared in integer cents (each amount is
rounded to cents before summing, so SQLite's floating point never sums 0.1 + 0.2);
comparisons against integer-valued columns and aggregates use whole-number bounds
(`x > 2.5` is `x >= 3`), and `avg op v` is `sum op v * count`, never a division.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.db import connection
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Count,
    DateTimeField,
    DecimalField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
    Value,
)
from django.db.models.functions import Cast, Round
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Lookup,
)
from django.db.models.sql.where import WhereNode

from contacts.models import Contact, ContactStats, ContactTag, Event, Order, OrderItem

from . import catalog as cat
from .casefold import fold, folded_sql
from .catalog import Catalog, Field
from .definition import (
    AttributeCondition,
    Condition,
    EventCondition,
    Filter,
    Group,
    OrdersCondition,
    SegmentCondition,
    TagCondition,
)
from .timespec import Span, midnight_utc


class CompileError(Exception):
    """The compiler met something it does not know; the definition was not validated."""


# A condition while it is being built: a Q, or a constant decided in Python.
Cond = Q | bool

TRUE_Q = Q(pk__isnull=False)  # the primary key is never NULL: TRUE for every row, FALSE when negated
FALSE_Q = Q(pk__in=[])  # Django turns an empty IN into "no rows", and its negation into "all rows"


def _missing_or_before(path: str, moment: datetime) -> Q:
    """`path IS NULL OR path < moment`: "missing or older than the span" (`not_in_last`), two ranges of an
    index that exclude each other (see `union_parts`)."""
    return Q(**{f"{path}__isnull": True}) | Q(**{f"{path}__lt": moment})


def _is_missing_or_before(node) -> bool:
    if not isinstance(node, Q) or node.negated or node.connector != Q.OR or len(node.children) != 2:
        return False
    missing, before = node.children
    if not (isinstance(missing, tuple) and isinstance(before, tuple)):
        return False
    path = missing[0].removesuffix("__isnull")
    return missing == (f"{path}__isnull", True) and before[0] == f"{path}__lt"


def union_parts(condition: Q) -> list[Q] | None:
    """When a compiled definition is exactly one "missing or before" (`_missing_or_before`: "inactive for
    30 days", "no order in 30 days"), its two sides, which share no row. PostgreSQL reads such an OR with a
    full scan or with bitmaps of the heap, where the sum of two index-only ranges is what an expert writes
    by hand. (With other conditions beside it, one pass that tests them all is faster.) Else None."""
    if _is_missing_or_before(condition):
        return [Q(child) for child in condition.children]
    return None


def _and(*parts: Cond) -> Cond:
    result: Cond = True
    for part in parts:
        if part is False:
            return False
        if part is True:
            continue
        result = part if result is True else result & part
    return result


def _or(*parts: Cond) -> Cond:
    result: Cond = False
    for part in parts:
        if part is True:
            return True
        if part is False:
            continue
        result = part if result is False else result | part
    return result


def _not(part: Cond) -> Cond:
    if isinstance(part, bool):
        return not part
    return ~part


def _q(part: Cond) -> Q:
    if part is True:
        return TRUE_Q
    if part is False:
        return FALSE_Q
    return part


# ---------------------------------------------------------------------------- SQL pieces


def _like_pattern(text: str, op: str) -> str:
    escaped = fold(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if op == "starts_with":
        return escaped + "%"
    if op == "ends_with":
        return "%" + escaped
    return "%" + escaped + "%"


class FoldedLike(Expression):
    """`fold(expression) LIKE pattern`: "ignore case" as `segments_app.casefold` defines it, on both databases."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, expression: Expression, pattern: str) -> None:
        super().__init__()
        self.expression = expression
        self.pattern = pattern

    def get_source_expressions(self) -> list:
        return [self.expression]

    def set_source_expressions(self, exprs: list) -> None:
        (self.expression,) = exprs

    def as_sql(self, compiler, connection):
        folded, params = folded_sql(*compiler.compile(self.expression), connection.vendor)
        return f"{folded} LIKE %s ESCAPE '\\'", (*params, self.pattern)


class _JsonKey(Expression):
    """Base for reading one top-level key of a JSON column, with SQL per database."""

    def __init__(self, column: str, key: str) -> None:
        super().__init__()
        self.column = F(column)
        self.key = key

    def get_source_expressions(self) -> list:
        return [self.column]

    def set_source_expressions(self, exprs: list) -> None:
        (self.column,) = exprs

    def as_sql(self, compiler, connection):
        col, col_params = compiler.compile(self.column)
        if connection.vendor == "postgresql":
            template, arg = self.postgresql, self.key
        elif connection.vendor == "sqlite":
            template, arg = self.sqlite, cat.json_path(self.key)
        else:
            raise CompileError(f"JSON keys are not supported on {connection.vendor}")
        sql, params = [], []
        for piece in re.split(r"(\{col\}|\{arg\})", template):
            if piece == "{col}":
                sql.append(col)
                params.extend(col_params)
            elif piece == "{arg}":
                sql.append("%s")
                params.append(arg)
            else:
                sql.append(piece)
        return "".join(sql), tuple(params)


class JsonString(_JsonKey):
    """The key's value when it is a non-empty JSON string, else NULL."""

    output_field = TextField()
    postgresql = (
        "(CASE WHEN jsonb_typeof({col} -> {arg}) = 'string' AND ({col} ->> {arg}) <> '' THEN {col} ->> {arg} END)"
    )
    sqlite = (
        "(CASE WHEN json_type({col}, {arg}) = 'text' AND json_extract({col}, {arg}) <> ''"
        " THEN json_extract({col}, {arg}) END)"
    )


class JsonNumber(_JsonKey):
    """The key's value when it is a JSON number, else NULL."""

    output_field = DecimalField()
    postgresql = "(CASE WHEN jsonb_typeof({col} -> {arg}) = 'number' THEN ({col} ->> {arg})::numeric END)"
    # NUMERIC affinity so that SQLite converts the compared parameter to a number.
    sqlite = (
        "CAST((CASE WHEN json_type({col}, {arg}) IN ('integer', 'real')"
        " THEN json_extract({col}, {arg}) END) AS NUMERIC)"
    )


class JsonIsTrue(_JsonKey):
    """TRUE when the key's value is JSON true, FALSE otherwise (never NULL)."""

    output_field = BooleanField()
    conditional = True
    postgresql = "COALESCE(({col} -> {arg}) = 'true'::jsonb, FALSE)"
    sqlite = "COALESCE(json_type({col}, {arg}) = 'true', 0)"


class JsonIsSet(_JsonKey):
    """TRUE when the key is present and its value is neither null nor the empty string (never NULL)."""

    output_field = BooleanField()
    conditional = True
    postgresql = "COALESCE(jsonb_typeof({col} -> {arg}) <> 'null' AND ({col} -> {arg}) <> '\"\"'::jsonb, FALSE)"
    sqlite = (
        "COALESCE(json_type({col}, {arg}) <> 'null'"
        " AND NOT (json_type({col}, {arg}) = 'text' AND json_extract({col}, {arg}) = ''), 0)"
    )


# An ISO 8601 date or datetime that both databases read the same way: a real calendar
# date (years 1000-8999), an optional time to the microsecond, an optional Z or
# +-HH:MM offset. Anything else stored under a datetime attribute is missing. The
# pattern is checked before any cast, so odd data never makes a query fail.
_LEAP_YEAR = r"(?:[1-8][0-9](?:0[48]|[2468][048]|[13579][26])|(?:1[26]|[2468][048]|[3579][26])00)"
_MONTH_DAY = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
ISO_DATETIME_PATTERN = (
    rf"\A(?:[1-8][0-9]{{3}}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])?)?\Z"
)


class JsonDatetime(_JsonKey):
    """The key's value as a time when it is a string in the ISO form above, else NULL.

    PostgreSQL casts it to timestamptz. SQLite has no such type: the value becomes
    the text Django stores datetimes as on SQLite ("YYYY-MM-DD HH:MM:SS[.ffffff]" in
    UTC), so it compares with datetime parameters exactly as Django's own columns do.
    The fraction is carried over as text because SQLite's date functions round to
    milliseconds.
    """

    output_field = DateTimeField()

    def as_sql(self, compiler, connection):
        col, col_params = compiler.compile(self.column)
        if connection.vendor == "postgresql":
            text = f"({col} ->> %s)"
            sql = (
                f"(CASE WHEN jsonb_typeof({col} -> %s) = 'string' AND {text} ~ %s THEN CAST({text} AS timestamptz) END)"
            )
            params = (*col_params, self.key, *col_params, self.key, ISO_DATETIME_PATTERN, *col_params, self.key)
            return sql, params
        if connection.vendor != "sqlite":
            raise CompileError(f"JSON keys are not supported on {connection.vendor}")
        # A scalar subquery names the extracted text once (v) instead of repeating the extraction.
        offset = (
            "(CASE WHEN v LIKE '%%Z' THEN 'Z'"
            " WHEN length(v) > 16 AND substr(v, -6, 1) IN ('+', '-') THEN substr(v, -6) ELSE '' END)"
        )
        tail = "substr(v, 17)"  # after YYYY-MM-DDTHH:MM: [:SS[.ffffff]][offset]
        seconds = f"(CASE WHEN substr({tail}, 1, 1) = ':' THEN substr({tail}, 2, 2) ELSE '00' END)"
        digits = (
            f"(CASE WHEN substr({tail}, 4, 1) = '.'"
            f" THEN substr({tail}, 5, length({tail}) - 4 - length({offset})) ELSE '' END)"
        )
        fraction = f"substr({digits} || '000000', 1, 6)"
        whole_seconds = (
            "strftime('%%Y-%%m-%%d %%H:%%M:%%S',"
            f" substr(v, 1, 10) || 'T' || substr(v, 12, 5) || ':' || {seconds} || {offset})"
        )
        moment = (
            f"CASE WHEN length(v) = 10 THEN v || ' 00:00:00'"
            f" ELSE {whole_seconds} || (CASE WHEN {fraction} = '000000' THEN '' ELSE '.' || {fraction} END) END"
        )
        sql = (
            f"(SELECT CASE WHEN t = 'text' AND v REGEXP %s THEN {moment} END"
            f" FROM (SELECT json_type({col}, %s) AS t, json_extract({col}, %s) AS v))"
        )
        path = cat.json_path(self.key)
        return sql, (ISO_DATETIME_PATTERN, *col_params, path, *col_params, path)


def _cents(expression: Expression) -> Expression:
    """An amount in whole cents, so that sums are exact on SQLite too (amounts have 2 decimal places)."""
    return Cast(Round(ExpressionWrapper(expression * 100, output_field=DecimalField())), BigIntegerField())


# ---------------------------------------------------------------------------- numbers


def _floor(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_FLOOR)


def _ceil(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)


def _has_places(value: Decimal, places: int) -> bool:
    return _floor(value, places) == value


def _param(value: Decimal, places: int | None) -> Decimal | int:
    return int(value) if places == 0 else value


# ---------------------------------------------------------------------------- operands


class _Operand:
    """One value to test in SQL, relative to the queryset's model.

    `present()` is the condition "the value is not missing" (None when it is never
    missing); `test(lookup, value)` compares a present value.
    """

    places: int | None = None  # decimal places of a stored number (0 = integer), None = any

    def present(self) -> Cond | None:
        raise NotImplementedError

    def test(self, lookup: str, value) -> Cond:
        raise NotImplementedError

    def like(self, pattern: str) -> Cond:
        raise CompileError(f"{type(self).__name__} cannot be matched as text")


_LOOKUPS = {
    "exact": Exact,
    "in": In,
    "gt": GreaterThan,
    "gte": GreaterThanOrEqual,
    "lt": LessThan,
    "lte": LessThanOrEqual,
}


class _Column(_Operand):
    """A column (ORM path) of the queryset's model; for text and choice the empty string is missing."""

    def __init__(self, path: str, *, nullable: bool = True, text: bool = False, places: int | None = None) -> None:
        self.path = path
        self.nullable = nullable
        self.text = text
        self.places = places

    def present(self) -> Cond | None:
        parts: list[Cond] = []
        if self.nullable:
            parts.append(Q(**{f"{self.path}__isnull": False}))
        if self.text:
            parts.append(~Q(**{self.path: ""}))
        return _and(*parts) if parts else None

    def test(self, lookup: str, value) -> Cond:
        return Q(**{f"{self.path}__{lookup}": value})

    def like(self, pattern: str) -> Cond:
        return Q(FoldedLike(F(self.path), pattern))


class _DateColumn(_Column):
    """A date column compared with times: the date stands for midnight UTC of that day."""

    def test(self, lookup: str, value) -> Cond:
        day = value.date()
        exact_midnight = value == midnight_utc(day)
        # midnight(d) < t  <=>  d < ceil(t); midnight(d) <= t  <=>  d <= floor(t); and so on.
        if lookup in ("lt", "gte") and not exact_midnight:
            if day == date.max:
                return lookup == "lt"  # every date's midnight is earlier than such a t
            day = day + timedelta(days=1)
        return Q(**{f"{self.path}__{lookup}": day})


class _Expression(_Operand):
    """A typed SQL expression that is NULL exactly when the value is missing."""

    def __init__(self, expression: Expression, *, places: int | None = None) -> None:
        self.expression = expression
        self.places = places

    def present(self) -> Cond | None:
        return Q(IsNull(self.expression, False))

    def test(self, lookup: str, value) -> Cond:
        return Q(_LOOKUPS[lookup](self.expression, list(value) if lookup == "in" else value))

    def like(self, pattern: str) -> Cond:
        return Q(FoldedLike(self.expression, pattern))


class _Aggregate(_Operand):
    """An aggregate annotation of a grouped queryset (never missing inside a group)."""

    def __init__(self, alias: str, *, places: int | None = None) -> None:
        self.alias = alias
        self.places = places

    def present(self) -> Cond | None:
        return None

    def test(self, lookup: str, value) -> Cond:
        return Q(**{f"{self.alias}__{lookup}": value})


class _PerOrderAggregate(Expression):
    """MIN, MAX or COUNT of the per-order amounts, inside `_PerOrderGroups` (the SQL names its columns)."""

    output_field = BigIntegerField()

    def __init__(self, function: str) -> None:
        super().__init__()
        self.function = function

    def as_sql(self, compiler, connection):
        quote = connection.ops.quote_name
        return f"{self.function}({quote(_PER_ORDER)}.{quote('a')})", ()


class _PerOrderExtreme(_Operand):
    """The smallest or largest order amount of a contact, from amounts summed per order, or the number of
    orders (never missing)."""

    places = 0

    def __init__(self, measure: str) -> None:
        self.function = {"min": "MIN", "max": "MAX", "count": "COUNT"}[measure]

    def present(self) -> Cond | None:
        return None

    def test(self, lookup: str, value) -> Cond:
        return Q(_LOOKUPS[lookup](_PerOrderAggregate(self.function), list(value) if lookup == "in" else value))


_PER_ORDER = "per_order"


def _where(cond: Q) -> WhereNode:
    """A Q made only of lookup expressions (no field names to resolve) as SQL's WHERE tree."""
    children = []
    for child in cond.children:
        if isinstance(child, Q):
            children.append(_where(child))
        elif isinstance(child, Lookup):
            children.append(child)
        else:
            raise CompileError(f"cannot use {child!r} outside a queryset")
    return WhereNode(children, connector=cond.connector, negated=cond.negated)


class _ContactIn(Expression):
    """The contact is among the contact ids `rows` lists (orders, events, tags of it; or grouped rows,
    `... GROUP BY contact HAVING test`).

    PostgreSQL: `EXISTS (SELECT 1 FROM (rows) member WHERE member.<column> = <this row's contact id>)`.
    Among ANDs it becomes a semi-join (negated: an anti-join), which may spill to disk but never repeats;
    under an OR PostgreSQL plans both a hash of the rows' contacts and a lookup of one contact's rows
    through an index (the correlation is pushed into the rows, even grouped ones), and takes the cheaper:
    few candidates are looked up one by one instead of reading the whole history. `id IN (rows)` there has
    no such fallback: a hash that does not fit in work_mem becomes a rescan of all the rows for every
    contact. SQLite has no hash joins and runs a correlated subquery once per contact, through whatever
    index it finds (items have none by contact): there `id IN (rows)`, which it materialises once into a
    temporary index and probes.

    `repeated`: the rows may list a contact more than once (presence); `ids_sql` then makes them distinct.
    """

    output_field = BooleanField()
    conditional = True

    def __init__(self, rows: QuerySet | Subquery, column: str, *, repeated: bool = False) -> None:
        super().__init__()
        self.source = rows
        self.rows = rows if isinstance(rows, Subquery) else Subquery(rows)
        self.column = column
        self.repeated = repeated
        self.pk = F("pk")

    def ids_sql(self) -> tuple[str, tuple]:
        """The contact ids on their own, each once (see `direct_ids`)."""
        if isinstance(self.source, _PerOrderGroups):
            return self.source.sql_with_params()
        return (self.source.distinct() if self.repeated else self.source).query.sql_with_params()

    def rows_sql(self) -> tuple[str, tuple]:
        """The contact ids, possibly repeated: enough for EXISTS / IN."""
        if isinstance(self.source, _PerOrderGroups):
            return self.source.sql_with_params()
        return self.source.query.sql_with_params()

    def get_source_expressions(self) -> list:
        return [self.rows, self.pk]

    def set_source_expressions(self, exprs: list) -> None:
        self.rows, self.pk = exprs

    def as_sql(self, compiler, connection):
        rows_sql, rows_params = compiler.compile(self.rows)
        pk_sql, pk_params = compiler.compile(self.pk)
        sql = _member_sql(rows_sql, self.column, pk_sql, connection.vendor)
        if connection.vendor == "sqlite":
            return sql, (*pk_params, *rows_params)
        return sql, (*rows_params, *pk_params)


def _member_sql(rows_sql: str, column: str, contact_sql: str, vendor: str) -> str:
    """`contact_sql` is among the `column` values of the subquery `rows_sql` (parenthesised); see _ContactIn.
    Parameters: on SQLite the contact's come first, elsewhere the rows'."""
    member = connection.ops.quote_name("member")
    column = connection.ops.quote_name(column)
    if vendor == "sqlite":
        return f"{contact_sql} IN (SELECT {member}.{column} FROM {rows_sql} {member})"
    return f"EXISTS (SELECT 1 FROM {rows_sql} {member} WHERE {member}.{column} = {contact_sql})"


def _member_of(rows: QuerySet, column: str) -> Q:
    """The contact is among the contact ids `rows` (a values queryset of `column`, each once) lists."""
    return Q(_ContactIn(rows, column))


def direct_ids(condition: Q) -> tuple[str, tuple] | None:
    """SQL of the matching contact ids straight from the rows, when a compiled definition is one positive
    condition on rows (orders, items, events, tags), or several of them and negations of them joined by
    AND: then no figure and no contact column is needed, and counting needs no join with every contact or
    figures row (every row's contact is a contact of the workspace). The first positive condition drives;
    the others are EXISTS / NOT EXISTS over their own contact ids, so "bought SKU-1 this month and never its
    accessories" is the SKU-1 buyers anti-joined with the accessory buyers. None otherwise.
    """
    parts = _row_conditions(condition)
    if not parts or not any(not negated for negated, _ in parts):
        return None
    driver = next(part for negated, part in parts if not negated)
    sql, params = driver.ids_sql()
    others = [(negated, part) for negated, part in parts if part is not driver]
    if not others:
        return sql, params
    quote = connection.ops.quote_name
    contact = f"{quote('driver')}.{quote(driver.column)}"
    where, where_params = [], []
    for negated, part in others:
        other_sql, other_params = part.rows_sql()
        member = _member_sql(f"({other_sql})", part.column, contact, connection.vendor)
        where.append(f"NOT {member}" if negated else member)
        where_params.extend(other_params)
    return f"SELECT {contact} FROM ({sql}) {quote('driver')} WHERE {' AND '.join(where)}", (*params, *where_params)


def _row_conditions(condition: Q, negated: bool = False) -> list[tuple[bool, _ContactIn]] | None:
    """(negated, condition) of each conjunct when `condition` is an AND of row conditions, else None."""
    negated = negated != condition.negated
    if len(condition.children) > 1 and (negated or condition.connector != Q.AND):
        return None
    found = []
    for child in condition.children:
        if isinstance(child, Q):
            inner = _row_conditions(child, negated)
            if inner is None:
                return None
            found.extend(inner)
        elif isinstance(child, _ContactIn):
            found.append((negated, child))
        else:
            return None
    return found


class _PerOrderGroups(Subquery):
    """The contacts whose per-order amounts pass a test: `SELECT c FROM (amount per contact and order)
    GROUP BY c HAVING test`, for min and max over items, where an order's amount is the sum of its items.

    The ORM cannot aggregate an aggregate, so the outer level is written here: `per_order` is a values
    queryset of `c` (contact id), `o` (order id) and `a` (amount), and `test` a Q of lookups on
    `_PerOrderAggregate`.
    """

    def __init__(self, per_order: QuerySet, test: Q) -> None:
        super().__init__(per_order, output_field=BigIntegerField())
        self.having = _where(test)

    def as_sql(self, compiler, connection, template=None, **extra_context):
        inner_sql, inner_params = self.query.as_sql(compiler, connection)
        having_sql, having_params = compiler.compile(self.having)
        table, contact = connection.ops.quote_name(_PER_ORDER), connection.ops.quote_name("c")
        sql = f"(SELECT {table}.{contact} FROM {inner_sql} {table} GROUP BY {table}.{contact} HAVING {having_sql})"
        return sql, (*inner_params, *having_params)

    def sql_with_params(self) -> tuple[str, tuple]:
        """The same query on its own (for `direct_ids`)."""
        compiler = self.query.get_compiler(connection=connection)
        inner_sql, inner_params = self.query.sql_with_params()
        having_sql, having_params = compiler.compile(self.having)
        table, contact = connection.ops.quote_name(_PER_ORDER), connection.ops.quote_name("c")
        grouped = f"GROUP BY {table}.{contact} HAVING {having_sql}"
        return f"SELECT {table}.{contact} FROM ({inner_sql}) {table} {grouped}", (*inner_params, *having_params)


class _Average(_Operand):
    """avg = sum / count, compared as sum op value * count (exact, no division).

    `total` and `count` are expressions (aggregate aliases, or stored figures with `present` saying when
    there is anything to average).
    """

    places = None

    def __init__(self, total: Expression, count: Expression, scale: int, *, present: Cond | None = None) -> None:
        self.total = total
        self.count = count
        self.scale = scale  # the sum is in units of 10^-scale (2 for cents)
        self.presence = present

    def present(self) -> Cond | None:
        return self.presence

    def test(self, lookup: str, value) -> Cond:
        if lookup == "in":
            return _or(*(self.test("exact", v) for v in value))
        scaled = value.scaleb(self.scale)
        places = max(0, -scaled.as_tuple().exponent)
        denominator = 10**places
        numerator = int(scaled * denominator)
        lhs = ExpressionWrapper(self.total * Value(denominator), output_field=DecimalField())
        rhs = ExpressionWrapper(
            self.count * Value(Decimal(numerator), output_field=DecimalField()), output_field=DecimalField()
        )
        return Q(_LOOKUPS[lookup](lhs, rhs))


# ---------------------------------------------------------------------------- value predicates


def _number_test(operand: _Operand, op: str, value) -> Cond:
    """A present number compared with `op` (a false-on-missing operator)."""
    places = operand.places
    if op == "between":
        low, high = value
        return _and(_number_test(operand, "gte", low), _number_test(operand, "lte", high))
    if op == "in":
        return _or(*(_number_test(operand, "eq", v) for v in value))
    if places is None:
        return operand.test({"eq": "exact"}.get(op, op), value)
    # The stored value has `places` decimal places: compare with bounds of that precision
    # so that integer columns never see 2.5 (Django would truncate it to 2).
    if op == "eq":
        return operand.test("exact", _param(value, places)) if _has_places(value, places) else False
    if op in ("gt", "lte"):
        return operand.test(op, _param(_floor(value, places), places))
    if op in ("gte", "lt"):
        return operand.test(op, _param(_ceil(value, places), places))
    raise CompileError(f"unknown number operator {op!r}")


def _time_bounds(op: str, value, now: datetime) -> list[tuple[str, datetime]]:
    """The comparisons a present time must pass for `op` (a false-on-missing operator)."""
    if op == "before":
        return [("lt", value.resolve(now))]
    if op == "after":
        return [("gt", value.resolve(now))]
    if op == "between":
        low, high = value
        return [("gte", low.resolve(now)), ("lte", high.resolve(now))]
    if op == "in_last":
        span = value.span(now)
        return [("gte", span.start), ("lte", span.end)]
    if op == "at_or_after":  # the partner of not_in_last
        return [("gte", value.span(now).start)]
    raise CompileError(f"unknown datetime operator {op!r}")


def _positive(operand: _Operand, type_: str, op: str, value, now: datetime) -> Cond:
    """The false-on-missing test `op` on a present value (without the presence guard)."""
    if op == "is_set":
        return True
    if type_ in (cat.TEXT, cat.CHOICE):
        if op == "eq":
            return operand.test("exact", value) if value != "" else False
        if op == "in":
            values = [v for v in dict.fromkeys(value) if v != ""]
            return operand.test("in", values) if values else False
        if op in ("contains", "starts_with", "ends_with"):
            return operand.like(_like_pattern(value, op))
    elif type_ == cat.NUMBER:
        return _number_test(operand, op, value)
    elif type_ == cat.DATETIME:
        return _and(*(operand.test(lookup, moment) for lookup, moment in _time_bounds(op, value, now)))
    raise CompileError(f"operator {op!r} is not known for type {type_!r}")


def value_condition(operand: _Operand, type_: str, op: str, value, now: datetime) -> Cond:
    """The two-valued condition "the value passes `op value`", missing values included."""
    if op in cat.NEGATION_OF:
        return _not(value_condition(operand, type_, cat.NEGATION_OF[op], value, now))
    if op == "not_in_last":
        if isinstance(operand, _Column) and operand.nullable and not isinstance(operand, _DateColumn):
            return _missing_or_before(operand.path, value.span(now).start)
        return _not(value_condition(operand, type_, "at_or_after", value, now))
    test = _positive(operand, type_, op, value, now)
    if op in ("eq", "in") and type_ in (cat.TEXT, cat.CHOICE) and isinstance(operand, _Column):
        # Equal to a non-empty value (empty ones were dropped) is never true of a missing value, and Django
        # writes the negation of a lookup on a nullable column as "NOT (col = v AND col IS NOT NULL)": the
        # plain comparison is two-valued, and planned like the one an expert writes.
        present = None
    else:
        present = operand.present()
    return _and(present, test) if present is not None else test


# ---------------------------------------------------------------------------- the compiler


class _Compiler:
    """Compiles to a `Q` over `root`: Contact, or ContactStats (one row per contact, pk = contact id).

    Rooted on ContactStats, conditions on computed figures filter the root rows themselves and contact
    columns are reached through the one-to-one `contact` (`reads_contact` records that it happened).
    """

    def __init__(
        self,
        catalog: Catalog,
        now: datetime,
        resolve_segment: Callable[[int], Group],
        root: type[Contact] | type[ContactStats] = Contact,
    ) -> None:
        if now.tzinfo is None:
            raise CompileError("now must be an aware datetime")
        self.catalog = catalog
        self.now = now.astimezone(UTC)
        self.resolve_segment = resolve_segment
        self.root = root
        self.reads_contact = False
        self.reads_figures = False
        self.inlining: list[int] = []

    @property
    def workspace_id(self) -> int:
        if self.catalog.workspace_id is None:
            raise CompileError("this condition needs a catalog built for a workspace")
        return self.catalog.workspace_id

    # Negations are pushed down to the conditions (negation normal form), so that each
    # condition can pick the best shape for its own negation: a computed field's
    # negation stays a semi-join into ContactStats (one row per contact, so "not in
    # the stats rows passing P" is "in the stats rows failing P") instead of becoming
    # NOT IN, which PostgreSQL cannot turn into an anti-join.

    def group(self, group: Group, *, top: bool = False, negated: bool = False) -> Cond:
        if not isinstance(group, Group):
            raise CompileError(f"expected a Group, got {type(group).__name__}")
        if group.match not in ("all", "any", "none"):
            raise CompileError(f"unknown match {group.match!r}")
        if not group.conditions:
            if top:
                return not negated  # the contract: an empty top-level group is every contact
            raise CompileError("a nested group without conditions")
        # none = all of the negations, and negating a group swaps AND and OR (De Morgan):
        # all -> AND, any -> OR, none -> AND of negated children; negated: the other way round.
        children_negated = negated != (group.match == "none")
        conjunction = (group.match != "any") != negated
        # Conditions answered by computed figures (conditions on figures, and orders or event conditions a
        # stored figure answers) share one semi-join into ContactStats (one row per contact, so "in S(a)
        # and in S(b)" is "in S(a and b)", likewise for or): one scan of the stats instead of one each.
        parts: list[Cond] = []
        predicates: list[Cond] = []
        for node in group.conditions:
            predicate = self.stored_figures(node)
            if predicate is None:
                parts.append(self.node(node, negated=children_negated))
            else:
                predicates.append(_not(predicate) if children_negated else predicate)
        if predicates:
            parts.append(self._stats_semi_join(_and(*predicates) if conjunction else _or(*predicates)))
        return _and(*parts) if conjunction else _or(*parts)

    def node(self, node, *, negated: bool = False) -> Cond:
        if isinstance(node, Group):
            return self.group(node, negated=negated)
        predicate = self.stored_figures(node)
        if predicate is not None:
            return self._stats_semi_join(_not(predicate) if negated else predicate)
        if isinstance(node, AttributeCondition):
            return self.attribute(node, negated=negated)
        if isinstance(node, SegmentCondition):
            return self.segment(node, negated=negated)
        if isinstance(node, TagCondition):
            result = self.tag(node)
        elif isinstance(node, OrdersCondition):
            result = self.orders(node)
        elif isinstance(node, EventCondition):
            result = self.event(node)
        else:
            raise CompileError(f"unknown node {type(node).__name__}")
        return _not(result) if negated else result

    # -- attribute

    def attribute(self, cond: AttributeCondition, *, negated: bool = False) -> Cond:
        field = self.catalog.field(cond.field)
        if field is None:
            raise CompileError(f"unknown field {cond.field!r}")
        if cond.op not in field.operators:
            raise CompileError(f"operator {cond.op!r} not allowed for {field.key}")
        if field.source in (cat.SOURCE_CONTACT, cat.SOURCE_ATTRIBUTE):
            self.reads_contact = True
            column = field.column if self.root is Contact else f"contact__{field.column}"
            result = self.field_condition(field, column, cond.op, cond.value)
            return _not(result) if negated else result
        raise CompileError(f"field {field.key} cannot be used in an attribute condition")

    def stored_figures(self, node) -> Cond | None:
        """The node as a predicate over ContactStats rows when stored figures answer it exactly, else None.

        A condition on a computed figure always is one. So is an orders or event condition whose measure a
        figure keeps (figures are kept current in the transaction that writes the history): orders over
        all time without filters (count, sum, average, first, last), "ordered in the last N days" or
        not, "opened an email in the last 7 days" or not, the last open, click or activity. The history
        is then never read.
        """
        if isinstance(node, AttributeCondition):
            field = self.catalog.field(node.field)
            if field is None or field.source != cat.SOURCE_STATS:
                return None
            return self.figure_predicate(node)
        if isinstance(node, OrdersCondition):
            return self.orders_from_figures(node)
        if isinstance(node, EventCondition):
            return self.event_from_figures(node)
        return None

    def figure_predicate(self, cond: AttributeCondition, *, negated: bool = False) -> Cond:
        """The condition on a computed figure as a predicate over ContactStats rows."""
        field = self.catalog.field(cond.field)
        if field is None or field.source != cat.SOURCE_STATS:
            raise CompileError(f"{cond.field!r} is not a computed figure")
        if cond.op not in field.operators:
            raise CompileError(f"operator {cond.op!r} not allowed for {field.key}")
        inner = self.field_condition(field, field.column.removeprefix("stats__"), cond.op, cond.value)
        return _not(inner) if negated else inner

    def orders_from_figures(self, cond: OrdersCondition) -> Cond | None:
        if cond.measure not in cat.ORDER_MEASURES:
            raise CompileError(f"unknown orders measure {cond.measure!r}")
        if cond.filters:
            return None
        if cond.window is None and cond.measure in _ORDER_FIGURES:
            operand = _ORDER_FIGURES[cond.measure]()
            return value_condition(operand, cat.ORDER_MEASURES[cond.measure], cond.op, cond.value, self.now)
        if cond.measure == "count":
            return self._recency("last_order_at", cond.window, cond.op, cond.value)
        return None

    def event_from_figures(self, cond: EventCondition) -> Cond | None:
        if cond.measure not in cat.EVENT_MEASURES:
            raise CompileError(f"unknown event measure {cond.measure!r}")
        if not self.catalog.is_event_type(cond.event):
            raise CompileError(f"unknown event type {cond.event!r}")
        column = _EVENT_FIGURES.get(cond.event)
        if column is None or cond.filters:
            return None
        if cond.measure == "last_at" and cond.window is None:
            return value_condition(_Column(column), cat.DATETIME, cond.op, cond.value, self.now)
        if cond.measure == "count":
            return self._recency(column, cond.window, cond.op, cond.value)
        return None

    def _recency(self, column: str, window, op: str, value) -> Cond | None:
        """A count decided by whether there are rows in the window, from the time of the latest row.

        Nothing is stored dated after the moment it arrives (ingest keeps times no later than their receipt,
        the admin refuses later ones), so no row is later than now: the latest row (`column`, missing
        without rows) is at or after the window's start exactly when some row lies in a window that ends
        now or later. "Some open in the last 7 days" is "latest open >= now - 7 days"; "no order in the last
        30 days" is "no order at all, or the latest before now - 30 days". A window that ended in the past
        is left to the rows.
        """
        decided = _count_decided(cat.NUMBER, op, value, self.now)
        if decided is None:
            return None
        if decided == _holds(cat.NUMBER, op, value, Decimal(0), self.now):
            return decided  # the same answer with rows and without
        start = None
        if window is not None:
            span: Span = window.span(self.now)
            if span.end is not None and span.end < self.now:
                return None
            start = span.start
        if start is None:
            present = Q(**{f"{column}__isnull": False})
            return present if decided else ~present
        if decided:
            return Q(**{f"{column}__isnull": False, f"{column}__gte": start})
        return _missing_or_before(column, start)

    def _stats_semi_join(self, predicate: Cond) -> Cond:
        """Contacts whose stats row passes `predicate`: a semi-join, indexed by workspace and figure (rooted
        on the stats rows, the predicate itself)."""
        if isinstance(predicate, bool):
            return predicate
        self.reads_figures = True
        if self.root is ContactStats:
            return predicate
        stats = ContactStats.objects.filter(workspace_id=self.workspace_id).filter(predicate)
        return self._presence(stats)

    def field_condition(self, field: Field, column: str, op: str, value) -> Cond:
        """The condition on one catalog field whose value lives at `column` of the queryset's model."""
        if field.type == cat.BOOLEAN:
            if field.source != cat.SOURCE_ATTRIBUTE:
                raise CompileError(f"no boolean column for {field.key}")
            is_true = Q(JsonIsTrue(column, field.json_key))
            if op == "is_true":
                return is_true
            if op == "is_false":
                return ~is_true
            raise CompileError(f"operator {op!r} not allowed for booleans")
        return value_condition(self.operand(field, column), field.type, op, value, self.now)

    def operand(self, field: Field, column: str) -> _Operand:
        if field.source in (cat.SOURCE_ATTRIBUTE, cat.SOURCE_PROPERTY):
            key = field.json_key
            if field.type in (cat.TEXT, cat.CHOICE):
                return _Expression(JsonString(column, key))
            if field.type == cat.NUMBER:
                return _Expression(JsonNumber(column, key))
            if field.type == cat.DATETIME:
                return _Expression(JsonDatetime(column, key))
            raise CompileError(f"no operand for {field.type} attribute {field.key}")
        if field.is_date:
            return _DateColumn(column)
        nullable = _is_nullable(field)
        return _Column(column, nullable=nullable, text=field.type in (cat.TEXT, cat.CHOICE), places=field.places)

    # -- tag

    def tag(self, cond: TagCondition) -> Cond:
        names = list(dict.fromkeys(cond.names))
        if not names:
            raise CompileError("a tag condition without names")
        tagged = ContactTag.objects.filter(
            workspace_id=self.workspace_id, tag__workspace_id=self.workspace_id, tag__name__in=names
        )
        if cond.op == "has_any":
            return self._presence(tagged)
        if cond.op == "has_none":
            return ~self._presence(tagged)
        if cond.op == "has_all":
            # Tag names are unique per workspace and a contact has a tag once, so the
            # contacts with all of them are those with as many matching tags as names.
            complete = tagged.values("contact_id").annotate(found=Count("tag_id")).filter(found=len(names))
            return _member_of(complete.values("contact_id"), "contact_id")
        raise CompileError(f"unknown tag operator {cond.op!r}")

    # -- orders

    def orders(self, cond: OrdersCondition) -> Cond:
        if cond.measure not in cat.ORDER_MEASURES:
            raise CompileError(f"unknown orders measure {cond.measure!r}")
        if any(self._is_item_filter(f) for f in cond.filters):
            # Item filters: the measure is an aggregate over the matching items, which carry their order's
            # contact and time (count = distinct orders, sum = their items' quantity * unit_price).
            rows = self.item_rows(cond)
            over: dict = {"amount": _ITEM_AMOUNT, "count": Count("order_id", distinct=True), "order": "order_id"}
        else:
            rows, amount = self.order_rows(cond)
            over = {"amount": amount}
        measure_type = cat.ORDER_MEASURES[cond.measure]
        return self.measured(rows, cond.measure, measure_type, cond.op, cond.value, time_column="ordered_at", **over)

    def order_rows(self, cond: OrdersCondition) -> tuple[QuerySet | None, Expression]:
        """The orders the measure is taken over (None: none can pass) and each one's amount in cents.

        With item filters an order's amount is a correlated sum of its matching items: what explanations
        read for one contact (`measure_figures`); segment queries aggregate the items directly (`item_rows`).
        """
        if cond.measure not in cat.ORDER_MEASURES:
            raise CompileError(f"unknown orders measure {cond.measure!r}")
        order_parts: list[Cond] = []
        item_parts: list[Cond] = []
        for flt in cond.filters:
            field = self.catalog.order_filter(flt.field)
            if field is None:
                raise CompileError(f"unknown orders filter {flt.field!r}")
            part = self.filter_condition(field, flt)
            (item_parts if field.source == cat.SOURCE_ITEM else order_parts).append(part)
        matched = _and(*order_parts)
        amount: Expression = _cents(F("total"))
        if item_parts:
            # Only the matching items count: an order counts when it has one, and its
            # amount is the sum of its matching items' quantity * unit_price.
            item_match = _and(*item_parts)
            items = _filter(OrderItem.objects.filter(order_id=OuterRef("pk")), item_match)
            if items is None:
                matched = False
            else:
                matched = _and(matched, Q(Exists(items)))
                per_order = items.values("order_id").annotate(amount=Sum(_ITEM_AMOUNT)).values("amount")
                amount = Subquery(per_order, output_field=BigIntegerField())
        rows = self.windowed(Order.objects.filter(workspace_id=self.workspace_id), "ordered_at", cond.window)
        return _filter(rows, matched), amount

    def _is_item_filter(self, flt: Filter) -> bool:
        field = self.catalog.order_filter(flt.field)
        if field is None:
            raise CompileError(f"unknown orders filter {flt.field!r}")
        return field.source == cat.SOURCE_ITEM

    def item_rows(self, cond: OrdersCondition) -> QuerySet | None:
        """The matching items of the orders in the window that pass the order filters (None: none can pass).

        Each item carries copies of its order's `contact_id` and `ordered_at` (see `OrderItem`), so with
        item filters only the window and the grouping never need the orders: "Acme items in the last 6
        months" is one range of the (product, ordered_at) index per product, which also holds the contact,
        the order and the amount. Only order filters (source, total, currency, ordered_at) join each item
        to its order. Items carry their workspace too.
        """
        parts: list[Cond] = []
        for flt in cond.filters:
            field = self.catalog.order_filter(flt.field)
            if field is None:
                raise CompileError(f"unknown orders filter {flt.field!r}")
            if flt.op not in field.operators:
                raise CompileError(f"operator {flt.op!r} not allowed for filter {field.key}")
            column = field.column if field.source == cat.SOURCE_ITEM else f"order__{field.column}"
            parts.append(self.field_condition(field, column, flt.op, flt.value))
        rows = OrderItem.objects.filter(workspace_id=self.workspace_id)
        return _filter(self.windowed(rows, "ordered_at", cond.window), _and(*parts))

    # -- events

    def event(self, cond: EventCondition) -> Cond:
        rows = self.event_rows(cond)  # checks the measure and the event type first
        measure_type = cat.EVENT_MEASURES[cond.measure]
        return self.measured(rows, cond.measure, measure_type, cond.op, cond.value, time_column="occurred_at")

    def event_rows(self, cond: EventCondition) -> QuerySet | None:
        """The events the measure is taken over (None: none can pass)."""
        if cond.measure not in cat.EVENT_MEASURES:
            raise CompileError(f"unknown event measure {cond.measure!r}")
        if not self.catalog.is_event_type(cond.event):
            raise CompileError(f"unknown event type {cond.event!r}")
        rows = Event.objects.filter(workspace_id=self.workspace_id)
        if cond.event != cat.ANY_EVENT:
            rows = rows.filter(type=cond.event)
        rows = self.windowed(rows, "occurred_at", cond.window)
        for flt in cond.filters:
            field = self.catalog.event_filter(flt.field)
            if field is None:
                raise CompileError(f"unknown event filter {flt.field!r}")
            rows = _filter(rows, self.filter_condition(field, flt))
        return rows

    def filter_condition(self, field: Field, flt: Filter) -> Cond:
        if flt.op not in field.operators:
            raise CompileError(f"operator {flt.op!r} not allowed for filter {field.key}")
        if field.type == cat.PROPERTY:
            return self.property_condition(field, flt.op, flt.value)
        return self.field_condition(field, field.column, flt.op, flt.value)

    def property_condition(self, field: Field, op: str, value) -> Cond:
        """An event property: strings compare as text, numbers as numbers (see the catalog's doc)."""
        column, key = field.column, field.json_key
        if op in ("is_set", "is_not_set"):
            is_set = Q(JsonIsSet(column, key))
            return is_set if op == "is_set" else ~is_set
        sample = value[0] if isinstance(value, tuple) else value
        if isinstance(sample, Decimal):
            return value_condition(_Expression(JsonNumber(column, key)), cat.NUMBER, op, value, self.now)
        if isinstance(sample, str):
            return value_condition(_Expression(JsonString(column, key)), cat.TEXT, op, value, self.now)
        raise CompileError(f"unexpected value for property filter {field.key}")

    def windowed(self, rows: QuerySet, column: str, window) -> QuerySet:
        if window is None:
            return rows
        span: Span = window.span(self.now)
        rows = rows.filter(**{f"{column}__gte": span.start})
        if span.end is not None:
            rows = rows.filter(**{f"{column}__lte": span.end})
        return rows

    def measured(
        self,
        rows: QuerySet | None,
        measure: str,
        measure_type: str,
        op: str,
        value,
        *,
        time_column: str,
        amount: Expression | None = None,
        contact: str = "contact_id",
        count: Expression | None = None,
        order: str | None = None,
    ) -> Cond:
        """The condition "the measure over `rows` passes `op value`", decided per contact.

        `rows` None means the filters can never pass: every contact has no rows. `contact` is the
        path from a row to its contact's id and `count` what `count` counts (default: the rows).
        `order` is the path to the row's order when several rows make up one order (items): `amount`
        is then summed per order before `min` and `max` compare the orders' amounts.

        Shapes: when the test is decided by the mere presence of rows (a count of at least 1, "did
        not" as count 0, ...) no grouping is needed and the condition is a correlated EXISTS, which
        PostgreSQL plans as a semi-join, or NOT EXISTS, an anti-join (NOT IN cannot be one). Other
        tests group the rows by contact: `pk IN (SELECT contact ... GROUP BY contact HAVING test)`.
        """
        count = count if count is not None else Count("pk")
        # The measure over no rows: count and sum are 0, the others missing.
        empty = Decimal(0) if measure in ("count", "sum") else None
        holds_when_empty = _holds(measure_type, op, value, empty, self.now)
        if rows is None:
            return holds_when_empty
        if measure == "count":
            decided = _count_decided(measure_type, op, value, self.now)
            if decided is not None:
                # Every contact with rows has a count of at least 1 and the test gives the same answer
                # for all such counts: only whether there are rows matters.
                if decided == holds_when_empty:
                    return decided
                present = self._presence(rows, contact)
                return present if decided else ~present
        grouped = rows.values(contact)
        per_order: QuerySet | None = None
        one_or_more = _one_or_more_orders(measure_type, op, value, self.now) if measure == "count" else None
        if one_or_more is not None and order is not None:
            # The test only tells one order from several: one is MIN(order) = MAX(order), several are not,
            # one aggregate over the matching items with no need to count distinct orders.
            grouped = grouped.annotate(first_order=Min(order), last_order=Max(order))
            one, several = one_or_more
            single = Q(first_order=F("last_order"))
            passes = _or(_and(one, single), _and(several, ~single))
            operand = None
        elif measure == "count" and order is not None:
            # Distinct orders of the matching items: grouped by (contact, order), then counted per contact,
            # two hash aggregates instead of a COUNT(DISTINCT) that has to sort every item.
            operand: _Operand | None = _PerOrderExtreme("count")
            per_order = rows.values(c=F(contact), o=F(order)).annotate(a=Count("pk"))
        elif measure == "count":
            operand = _Aggregate("m", places=0)
            grouped = grouped.annotate(m=count)
        elif measure == "sum":
            operand = _Aggregate("m", places=0)
            value = _scaled(value, 2)
            grouped = grouped.annotate(m=Sum(amount))
        elif measure == "avg":
            operand = _Average(F("s"), F("c"), 2)
            grouped = grouped.annotate(s=Sum(amount), c=count)
        elif measure in ("min", "max") and order is not None:
            operand = _PerOrderExtreme(measure)
            value = _scaled(value, 2)
            per_order = rows.values(c=F(contact), o=F(order)).annotate(a=Sum(amount))
            if op in _DECIDED_BY_ONE_ORDER[measure]:
                # "The largest order is over v" is "some order is over v" (likewise the smallest under v):
                # one aggregate per order instead of a second one per contact. No orders: missing, false.
                some_order = value_condition(_Aggregate("a", places=0), measure_type, op, value, self.now)
                if isinstance(some_order, bool):
                    return self._presence(rows, contact) if some_order else False
                return _member_of(per_order.filter(some_order).values("c"), "c")
        elif measure in ("min", "max"):
            operand = _Aggregate("m", places=0)
            value = _scaled(value, 2)
            grouped = grouped.annotate(m=(Min if measure == "min" else Max)(amount))
        elif measure in ("first_at", "last_at"):
            operand = _Aggregate("m")
            grouped = grouped.annotate(m=(Min if measure == "first_at" else Max)(time_column))
        else:
            raise CompileError(f"unknown measure {measure!r}")
        if operand is not None:
            # Within a group the measure is present, so the condition is the plain test.
            passes = value_condition(operand, measure_type, op, value, self.now)

        def passing(test: Q) -> Q:
            """The contacts whose group passes `test`."""
            if per_order is not None:
                return Q(_ContactIn(_PerOrderGroups(per_order, test), "c"))
            return _member_of(grouped.filter(test).values(contact), contact)

        if holds_when_empty:
            failing = _not(passes)
            if failing is False:
                return True
            if failing is True:
                return ~self._presence(rows, contact)
            return ~passing(failing)
        if passes is False:
            return False
        if passes is True:
            return self._presence(rows, contact)
        return passing(passes)

    def _presence(self, rows: QuerySet, contact: str = "contact_id") -> Q:
        """"The contact has rows", in the shape each database plans best (see _ContactIn)."""
        return Q(_ContactIn(rows.values(contact), contact, repeated=True))

    # -- segment

    def segment(self, cond: SegmentCondition, *, negated: bool = False) -> Cond:
        if cond.op not in ("in", "not_in"):
            raise CompileError(f"unknown segment operator {cond.op!r}")
        if cond.segment in self.inlining:
            raise CompileError(f"segment {cond.segment} refers to itself")
        group = self.resolve_segment(cond.segment)
        self.inlining.append(cond.segment)
        try:
            # The referenced rule, inlined; not_in is its negation.
            return self.group(group, top=True, negated=negated != (cond.op == "not_in"))
        finally:
            self.inlining.pop()


# Orders measures over all time without filters that a stored figure (ContactStats column) keeps exactly.
# The average is the stored total over the stored count (the stored avg_order_value is rounded to cents).
_ORDER_FIGURES: dict[str, Callable[[], _Operand]] = {
    "count": lambda: _Column("orders_count", nullable=False, places=0),
    "sum": lambda: _Column("total_spent", nullable=False, places=2),
    "avg": lambda: _Average(_cents(F("total_spent")), F("orders_count"), 2, present=Q(orders_count__gt=0)),
    "first_at": lambda: _Column("first_order_at"),
    "last_at": lambda: _Column("last_order_at"),
}
# Event types whose latest time (over all time, without filters) a stored figure keeps.
_EVENT_FIGURES = {
    "email_open": "last_email_open_at",
    "email_click": "last_email_click_at",
    cat.ANY_EVENT: "last_seen_at",
}

# Tests on the largest / smallest order amount that one order decides (max > v: some order is over v).
_DECIDED_BY_ONE_ORDER = {"max": frozenset({"gt", "gte"}), "min": frozenset({"lt", "lte"})}
_ITEM_AMOUNT = ExpressionWrapper(F("quantity") * _cents(F("unit_price")), output_field=BigIntegerField())


def _one_or_more_orders(type_: str, op: str, value, now: datetime) -> tuple[bool, bool] | None:
    """For a count test that answers alike for every count from 2 up: whether it holds for 1, and for more
    (e.g. `gte 2`: (False, True); `eq 1`: (True, False)). None when larger counts differ."""
    numbers = [v for v in (value if isinstance(value, tuple) else (value,)) if isinstance(v, Decimal)]
    top = max([Decimal(1), *numbers])
    if top > 2:
        return None
    several = {_holds(type_, op, value, Decimal(n), now) for n in range(2, int(top) + 3)}
    if len(several) != 1:
        return None
    return _holds(type_, op, value, Decimal(1), now), several.pop()


def _count_decided(type_: str, op: str, value, now: datetime) -> bool | None:
    """Whether `count op value` holds for every count from 1 up (True), for none (False), or depends (None).

    Past the largest number in the value every count behaves alike, so counts 1 to that number + 1
    decide it; large thresholds are left to the grouped query.
    """
    numbers = [v for v in (value if isinstance(value, tuple) else (value,)) if isinstance(v, Decimal)]
    top = max([Decimal(1), *numbers])
    if top > 1000:
        return None
    answers = {_holds(type_, op, value, Decimal(n), now) for n in range(1, int(top) + 2)}
    return answers.pop() if len(answers) == 1 else None


def _filter(rows: QuerySet | None, cond: Cond) -> QuerySet | None:
    if rows is None or cond is False:
        return None
    if cond is True:
        return rows
    return rows.filter(cond)


def _scaled(value, places: int):
    """A number value in units of 10^-places (e.g. EUR to cents); ranges and lists element-wise."""
    if isinstance(value, tuple):
        return tuple(v.scaleb(places) for v in value)
    return value.scaleb(places) if isinstance(value, Decimal) else value


_MODELS = {
    cat.SOURCE_CONTACT: Contact,
    cat.SOURCE_STATS: ContactStats,
    cat.SOURCE_ORDER: Order,
    cat.SOURCE_ITEM: OrderItem,
    cat.SOURCE_EVENT: Event,
}


def _is_nullable(field: Field) -> bool:
    """Whether the field's column can be NULL (from the model, so the catalog cannot drift from it)."""
    model = _MODELS[field.source]
    names = field.column.removeprefix("stats__").split("__")
    for name in names[:-1]:
        model = model._meta.get_field(name).related_model
    return model._meta.get_field(names[-1]).null


def _holds(type_: str, op: str, value, empty: Decimal | None, now: datetime) -> bool:
    """Whether `op value` holds for the measure over no rows (`empty`: 0, or None for missing)."""
    if empty is None:
        return op in cat.TRUE_ON_MISSING
    if op in cat.NEGATION_OF:
        return not _holds(type_, cat.NEGATION_OF[op], value, empty, now)
    if op == "is_set":
        return True
    if op == "eq":
        return empty == value
    if op == "in":
        return empty in value
    if op == "gt":
        return empty > value
    if op == "gte":
        return empty >= value
    if op == "lt":
        return empty < value
    if op == "lte":
        return empty <= value
    if op == "between":
        return value[0] <= empty <= value[1]
    raise CompileError(f"operator {op!r} is not known for a {type_} measure")


def compile_definition(group: Group, *, catalog: Catalog, now: datetime, resolve_segment: Callable[[int], Group]) -> Q:
    """Compile a validated definition to a `Q` over `Contact` (filter the workspace's contacts with it).

    `now` is the moment of evaluation (aware); `resolve_segment(id)` returns the parsed
    definition of a referenced segment, which is inlined (its rule evaluated now).

    >>> from segments_app.definition import parse_definition
    >>> group = parse_definition({"match": "all", "conditions": [
    ...     {"type": "attribute", "field": "country", "op": "ne", "value": "PL"}]},
    ...     catalog=Catalog(workspace_id=1))
    >>> q = compile_definition(group, catalog=Catalog(workspace_id=1), now=datetime.now(UTC),
    ...                        resolve_segment=lambda i: None)
    >>> # Contact.objects.filter(workspace_id=1).filter(q): contacts whose country is not "PL", or missing
    """
    return _q(_Compiler(catalog, now, resolve_segment).group(group, top=True))


def compile_matching(
    group: Group, *, catalog: Catalog, now: datetime, resolve_segment: Callable[[int], Group]
) -> tuple[type[Contact] | type[ContactStats], Q]:
    """Compile a validated definition for counting and listing its members' ids: (model, condition).

    Filter `model`'s rows of the workspace with `condition`; their primary keys are the matching contacts'
    ids. A definition that reads computed figures (or orders and event conditions they answer) is rooted
    on ContactStats, which has a row for every contact: "spent over 500" is then a range of the stats index
    alone, with no join back to every contact of the workspace, and contact columns come from a join with
    the contact (one row each), so that "mobile only and not (subscribed and opened lately)" is one pass
    over both tables instead of a lookup into the figures per contact. A definition that reads contact
    columns and no figure is `compile_definition`'s query over Contact; one that reads neither (tags,
    orders, events) is rooted on the figures too.
    """
    over_stats = _Compiler(catalog, now, resolve_segment, root=ContactStats)
    condition = over_stats.group(group, top=True)
    if over_stats.reads_contact and not over_stats.reads_figures:
        return Contact, compile_definition(group, catalog=catalog, now=now, resolve_segment=resolve_segment)
    return ContactStats, _q(condition)


def answered_by_figures(node: Condition, *, catalog: Catalog, now: datetime) -> bool:
    """Whether the condition is answered from the stored figures alone (see `_Compiler.stored_figures`).

    Benchmarks and explanations use it to tell what a definition reads."""
    return _Compiler(catalog, now, lambda segment_id: None).stored_figures(node) is not None


def measure_figures(cond: OrdersCondition | EventCondition, *, catalog: Catalog, now: datetime) -> QuerySet | None:
    """Per contact with rows, the figures an orders or event condition measures (for explanations).

    A values queryset of `{"contact_id", "count", "first_at", "last_at"}` plus, for orders, `"amount"`,
    `"min_amount"`, `"max_amount"` in cents, over exactly the rows the compiled condition aggregates
    (same filters, same window at `now`). None when the filters can never pass. A contact without rows
    has no entry: its count and sum are 0, the other measures missing.
    """
    compiler = _Compiler(catalog, now, lambda segment_id: None)
    if isinstance(cond, OrdersCondition):
        rows, amount = compiler.order_rows(cond)
        if rows is None:
            return None
        return rows.values("contact_id").annotate(
            count=Count("pk"),
            amount=Sum(amount),
            min_amount=Min(amount),
            max_amount=Max(amount),
            first_at=Min("ordered_at"),
            last_at=Max("ordered_at"),
        )
    if isinstance(cond, EventCondition):
        rows = compiler.event_rows(cond)
        if rows is None:
            return None
        return rows.values("contact_id").annotate(
            count=Count("pk"), first_at=Min("occurred_at"), last_at=Max("occurred_at")
        )
    raise CompileError(f"{type(cond).__name__} has no measure")


def compile_node(
    node: Group | Condition, *, catalog: Catalog, now: datetime, resolve_segment: Callable[[int], Group]
) -> Q:
    """Compile one node (a nested group or a single condition) to a two-valued `Q` over `Contact`.

    For explaining a segment condition by condition: `contacts.filter(compile_node(...))`
    tells which contacts pass that node, and its negation which fail it.
    """
    compiler = _Compiler(catalog, now, resolve_segment)
    return _q(compiler.group(node) if isinstance(node, Group) else compiler.node(node))
