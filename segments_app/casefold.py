"""The case folding behind "ignore case" (`contains`, `not_contains`, `starts_with`, `ends_with`).

Letter by letter, every upper-case letter of basic Latin (A-Z), Latin-1 (À-Þ), Latin Extended-A
(Ā-ž), basic Greek (Ά-Ϋ) and basic Cyrillic (Ѐ-Я) becomes its lower-case letter, when that is one letter
which upper-cases back to it: "KRAKÓW" folds to "kraków", "ŁÓDŹ" to "łódź", "MÜNCHEN" to "münchen",
"ΣΟΦΙΑ" to "σοφια", "МОСКВА" to "москва". Everything else stays as it is (digits, punctuation, other
scripts and rarer letters, and the few letters whose lower case is not a single letter, such as the
Turkish dotted "İ").

The same table is applied in SQL and in Python, so the answer never depends on the database or its
locale: on PostgreSQL `translate(text, UPPER, LOWER)` (with only A-Z for text that is all ASCII, the
common case: translate() looks each character up in the table, so the short table is several times
faster), and on SQLite the `ds_fold` function registered on every connection (SQLite's own lower()
folds ASCII only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_BLOCKS = ((0x0041, 0x005A), (0x00C0, 0x00DE), (0x0100, 0x017F), (0x0386, 0x03AB), (0x0400, 0x042F))
_ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _letter_pairs() -> list[tuple[str, str]]:
    pairs = []
    for first, last in _BLOCKS:
        for code in range(first, last + 1):
            upper = chr(code)
            lower = upper.lower()
            if lower != upper and len(lower) == 1 and lower.upper() == upper:
                pairs.append((upper, lower))
    return pairs


_PAIRS = _letter_pairs()
UPPER = "".join(upper for upper, _ in _PAIRS)
LOWER = "".join(lower for _, lower in _PAIRS)
_TABLE = str.maketrans(UPPER, LOWER)
SQLITE_FUNCTION = "ds_fold"


def fold(text: str) -> str:
    """`text` with the upper-case letters of the table above in lower case."""
    return text.translate(_TABLE)


def folded_sql(sql: str, params: Sequence[Any], vendor: str) -> tuple[str, tuple[Any, ...]]:
    """SQL and params folding the text expression (`sql`, `params`) exactly as `fold` does."""
    if vendor == "sqlite":
        return f"{SQLITE_FUNCTION}({sql})", tuple(params)
    case = (
        f"CASE WHEN octet_length({sql}) = length({sql}) THEN translate({sql}, %s, %s) "
        f"ELSE translate({sql}, %s, %s) END"
    )
    return case, (*params, *params, *params, _ASCII_UPPER, _ASCII_UPPER.lower(), *params, UPPER, LOWER)


def _sqlite_fold(value: Any) -> Any:
    return fold(value) if isinstance(value, str) else value


def register_on_sqlite(sender: Any, connection: Any, **kwargs: Any) -> None:
    """`connection_created` receiver: give each SQLite connection the folding function."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_FUNCTION, 1, _sqlite_fold, deterministic=True)
