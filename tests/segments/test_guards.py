"""Guard rails: a preview that outgrows SEGMENT_PREVIEW_TIMEOUT_MS is stopped and answers a clear 400.

The slow query is real SQL that counts to a billion (a recursive CTE, the same on both databases), so
the statement is genuinely cancelled by PostgreSQL's statement_timeout or SQLite's progress handler.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models.expressions import RawSQL

from contacts.models import Contact
from segments_app import services
from segments_app.guards import PREVIEW_WORK_MEM, PreviewTimeout, statement_timeout
from segments_app.selectors import Matching
from tests.factories import make_contact

from .support import ALL, attr

# Counting to a billion takes minutes on either database.
SLOW_SQL = "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) SELECT max(i) FROM n)"


def run_slow_query() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {SLOW_SQL}")
        cursor.fetchone()


def test_a_statement_past_the_limit_is_stopped(db):
    with pytest.raises(PreviewTimeout) as stopped, statement_timeout(50):
        run_slow_query()
    assert "Narrow the definition" in str(stopped.value)


def test_the_connection_is_usable_afterwards_and_unlimited_again(db):
    with pytest.raises(PreviewTimeout), statement_timeout(50):
        run_slow_query()

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
        if connection.vendor == "postgresql":
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("0",)


def test_a_fast_block_keeps_its_result_and_restores_the_setting(db):
    with statement_timeout(5000), connection.cursor() as cursor:
        cursor.execute("SELECT 41 + 1")
        answer = cursor.fetchone()[0]
        if connection.vendor == "postgresql":
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("5s",)
    assert answer == 42
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("0",)


def test_other_database_errors_are_not_reported_as_timeouts(db):
    from django.db import DatabaseError

    with pytest.raises(DatabaseError) as raised, statement_timeout(5000), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    assert not isinstance(raised.value, PreviewTimeout)


def test_previews_run_without_jit_and_with_more_work_memory(db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL settings")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit'), current_setting('work_mem')")
        before = cursor.fetchone()
    with statement_timeout(5000), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit'), current_setting('work_mem')")
        assert cursor.fetchone() == ("off", PREVIEW_WORK_MEM)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit'), current_setting('work_mem')")
        assert cursor.fetchone() == before


def test_zero_disables_the_limit(db, settings):
    settings.SEGMENT_PREVIEW_TIMEOUT_MS = 0
    with statement_timeout(), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if connection.vendor == "postgresql":
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("0",)


@pytest.fixture
def slow_matching(monkeypatch):
    """Make the preview's compiled query slow, whatever the definition (the guard is what is tested)."""
    compiled = services.matching_ids

    def slow(**kwargs):
        matching = compiled(**kwargs)
        return Matching(rows=matching.rows.filter(pk__in=RawSQL(f"SELECT {SLOW_SQL}", [])))

    monkeypatch.setattr(services, "matching_ids", slow)


def test_a_slow_preview_answers_400_asking_to_narrow_the_definition(api, workspace, settings, slow_matching):
    settings.SEGMENT_PREVIEW_TIMEOUT_MS = 100
    make_contact(workspace, country="PL")

    response = api.post("/api/v1/segments/preview/", {"definition": ALL(attr("country", "eq", "PL"))}, format="json")

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["path"] == "definition"
    assert "took longer than 0.1 s" in error["message"] and "Narrow the definition" in error["message"]
    # The worker is free again: the next request is served normally.
    assert api.get("/api/v1/segments/").status_code == 200
    assert Contact.objects.count() == 1
