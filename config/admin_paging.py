"""Admin pagination for tables with millions of rows.

An exact COUNT(*) over 20 million events takes seconds; operators page through the newest rows and
narrow with filters and search instead. So the count is capped: beyond `CAP` rows the admin shows the
first `CAP` rows' worth of pages.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property

CAP = 10_000


class LargeTablePaginator(Paginator):
    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if hasattr(object_list, "query"):
            # COUNT over a LIMITed subquery stops after CAP + 1 rows.
            return object_list[: CAP + 1].count()
        return len(object_list)
