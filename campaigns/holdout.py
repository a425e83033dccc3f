"""The holdout: a stable random control group per campaign, decided by a hash, in SQL and in Python alike.

A contact is in the control group of campaign C when

    first 8 hex digits of md5("<C>:<contact id>")  <  holdout_percent / 100 * 2^32   (as 8 hex digits)

MD5 spreads the keys evenly, so the control group is a uniform random sample of the audience whose
size is holdout_percent of it (within sampling noise); the same contact is always on the same side for
a campaign (the key does not depend on time, on the other contacts or on the order of rows), and on
independent sides for different campaigns. Comparing fixed-length lowercase hex strings orders them
like the numbers they spell, so the test needs no hex-to-integer conversion: `md5()` on PostgreSQL and
Django's `MD5()` on SQLite give the same strings, and `in_holdout` gives the same answer in Python.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

_SPACE = 2**32


def threshold(percent: Decimal | float | int) -> str | None:
    """The 8-hex-digit bound below which a hash falls in the control group; None at 0 % and at 100 %."""
    value = Decimal(str(percent))
    if value <= 0 or value >= 100:
        return None
    return f"{int(value * _SPACE / 100):08x}"


def holdout_key(campaign_id: int, contact_id: int) -> str:
    return f"{campaign_id}:{contact_id}"


def in_holdout(*, campaign_id: int, contact_id: int, percent: Decimal | float | int) -> bool:
    value = Decimal(str(percent))
    if value <= 0:
        return False
    if value >= 100:
        return True
    digest = hashlib.md5(holdout_key(campaign_id, contact_id).encode(), usedforsecurity=False).hexdigest()
    return digest[:8] < threshold(value)


def holdout_sql(*, campaign_id: int, percent: Decimal | float | int, contact_column: str) -> tuple[str, list]:
    """A boolean SQL expression (PostgreSQL and SQLite): is the contact in `contact_column` in the control group."""
    value = Decimal(str(percent))
    if value <= 0:
        return "(1 = 0)", []
    if value >= 100:
        return "(1 = 1)", []
    key = f"(%s || CAST({contact_column} AS TEXT))"
    return f"(SUBSTR(MD5({key}), 1, 8) < %s)", [f"{campaign_id}:", threshold(value)]
