"""What every ingest service shares: the result, the write transaction, and the after-write upkeep."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from django.conf import settings
from django.db import OperationalError, transaction

from contacts.ingest import fastpath
from contacts.models import Contact, Workspace
from segments_app.realtime import on_contacts_changed

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Deadlock and serialization failure: two calls touching the same contacts in a different order.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
WRITE_ATTEMPTS = 3


@dataclass
class IngestResult:
    """What one ingest call did. `errors` are located from the request body root."""

    created: int = 0
    updated: int = 0
    errors: list[dict] = field(default_factory=list)
    contact_ids: list[int] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return self.created + self.updated

    def as_response(self) -> dict:
        return {"created": self.created, "updated": self.updated, "errors": self.errors}


def max_records() -> int:
    return settings.INGEST_MAX_RECORDS


def in_one_transaction(write: Callable[[], T]) -> T:
    """Run `write` atomically, retrying a deadlock when this call owns the transaction."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        owns_transaction = not transaction.get_connection().in_atomic_block
        try:
            with transaction.atomic():
                return write()
        except OperationalError as exc:
            sqlstate = getattr(exc.__cause__, "sqlstate", None)
            if not owns_transaction or sqlstate not in RETRYABLE_SQLSTATES or attempt == WRITE_ATTEMPTS:
                raise
            logger.warning("ingest write hit %s, retrying (attempt %d)", sqlstate, attempt)
    raise AssertionError("unreachable")


def refresh_and_notify(
    *, workspace_id: int, contact_ids: Collection[int], stats_kinds: Collection[str], data_kinds: Collection[str]
) -> None:
    """Inside the write transaction: bring the contacts' figures up to date, then tell segments after commit."""
    if not contact_ids:
        return
    from contacts.stats import refresh_contact_stats

    ids = sorted(contact_ids)
    refresh_contact_stats(workspace_id=workspace_id, contact_ids=ids, kinds=tuple(stats_kinds))
    kinds = frozenset(data_kinds)
    # robust: the data is committed by then; a failing hook is logged, not turned into an error answer.
    transaction.on_commit(
        lambda: on_contacts_changed(workspace_id=workspace_id, contact_ids=ids, data_kinds=kinds), robust=True
    )


def contact_ids_by_external_id(
    *, workspace: Workspace, external_ids: Iterable[str], create_missing: bool
) -> tuple[dict[str, int], list[int]]:
    """Map external ids to contact ids; with `create_missing`, unknown ones become bare contacts.

    Returns the map and the ids of the contacts created here.
    """
    wanted = sorted(set(external_ids))
    found = fastpath.ids_by_key(Contact, workspace=workspace, key="external_id", values=wanted)
    missing = [external_id for external_id in wanted if external_id not in found]
    if not missing or not create_missing:
        return found, []
    fastpath.create_bare(Contact, workspace=workspace, key="external_id", values=missing)
    # Re-read: ignore_conflicts returns no ids, and a concurrent call may have created some of them.
    created = fastpath.ids_by_key(Contact, workspace=workspace, key="external_id", values=missing)
    found.update(created)
    return found, list(created.values())
