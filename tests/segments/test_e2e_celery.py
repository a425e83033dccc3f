"""The real parts together: a Celery worker and beat (subprocesses) on Redis and this test's PostgreSQL database.

These tests need PostgreSQL (the worker must see the test's committed data, so they are `transaction=True`
tests on the test database) and Redis at 127.0.0.1:6379 (database E2E_REDIS_DB, flushed before and after).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from contacts.models import Contact
from segments_app import webhooks
from segments_app.membership import recompute_membership
from segments_app.models import Segment, SegmentMember, SegmentSnapshot
from tests.factories import make_contact

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

E2E_REDIS_DB = int(os.environ.get("E2E_REDIS_DB", "11"))
REDIS_URL = f"redis://127.0.0.1:6379/{E2E_REDIS_DB}"
ROOT = Path(settings.BASE_DIR)
CELERY = str(Path(sys.executable).with_name("celery"))
POLISH = {"match": "all", "conditions": [{"type": "attribute", "field": "country", "op": "eq", "value": "PL"}]}
OPENED_TODAY = {
    "match": "all",
    "conditions": [
        {"type": "event", "event": "email_open", "window": {"last": 1, "unit": "days"}, "measure": "count",
         "op": "gte", "value": 1}
    ],
}


# --- the processes ----------------------------------------------------------------------------------


@pytest.fixture
def redis_db():
    if connection.vendor != "postgresql":
        pytest.skip("the worker must share the test database: PostgreSQL only")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not running at 127.0.0.1:6379")
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def process_env(redis_db, transactional_db) -> dict[str, str]:
    """What a worker or beat needs to see exactly this test's database and broker."""
    db = connection.settings_dict
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        CELERY_BROKER_URL=REDIS_URL,
        REDIS_URL="",
        SEGMENT_DISPATCH_INTERVAL_S="1",
        CELERY_VISIBILITY_TIMEOUT="3",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
    )
    return env


class Processes:
    """Starts celery subprocesses in their own process groups and stops every one of them at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def worker(self) -> subprocess.Popen:
        n = len(self.started)
        proc, log = self._start(
            [CELERY, "-A", "config", "worker", "-P", "solo", "--loglevel=INFO", "-n", f"e2e{n}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            f"worker{n}.log",
        )
        wait_for(lambda: "ready." in log.read_text(), timeout=60, what=f"worker {n} ready", logs=self)
        return proc

    def beat(self) -> subprocess.Popen:
        proc, _ = self._start(
            [CELERY, "-A", "config", "beat", "--loglevel=INFO", "--schedule", str(self.logs / "beat-schedule")],
            "beat.log",
        )
        return proc

    def _start(self, command: list[str], log_name: str) -> tuple[subprocess.Popen, Path]:
        log = self.logs / log_name
        with log.open("w") as out:
            proc = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started.append((proc, log))
        return proc, log

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc, _ in self.started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in self.started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def tail(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for _, log in self.started)


@pytest.fixture
def processes(process_env, tmp_path) -> Iterator[Processes]:
    procs = Processes(process_env, tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def tasks_to_broker(redis_db) -> Iterator[None]:
    """Make this process send tasks to Redis (as the web app does) instead of running them in-process."""
    from config.celery import app

    def configure(**conf) -> None:
        app.conf.update(**conf)
        # Even eager calls open a producer pool on the configured broker: start over on the new one.
        app.amqp._producer_pool = None
        app._pool = None

    before = {"task_always_eager": app.conf.task_always_eager, "broker_url": app.conf.broker_url}
    configure(task_always_eager=False, broker_url=REDIS_URL)
    yield
    configure(**before)


def wait_for(check: Callable[[], object], *, timeout: float, what: str, logs: Processes | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs.tail() if logs else ''}")


def members(segment: Segment) -> set[str]:
    return set(SegmentMember.objects.filter(segment=segment).values_list("contact__external_id", flat=True))


# --- a local ESP ------------------------------------------------------------------------------------


@contextmanager
def receiver(secret: str) -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = webhooks.verify_signature(secret, body, self.headers[webhooks.SIGNATURE_HEADER])
            if ok:
                received.append(json.loads(body))
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


# --- the tests --------------------------------------------------------------------------------------


def test_beat_worker_and_api_keep_a_segment_current(api, workspace, processes, tasks_to_broker):
    segment = Segment.objects.create(workspace=workspace, name="Opened today", definition=OPENED_TODAY,
                                     refresh_minutes=15)
    secret = "whsec_e2e_secret_0123456789"
    with receiver(secret) as (url, received):
        created = api.post("/api/v1/webhooks/", {"url": url, "secret": secret, "segments": [segment.pk]},
                           format="json")
        assert created.status_code == 201
        processes.worker()
        processes.beat()

        # Beat's dispatcher finds the never-computed segment and the worker computes it.
        wait_for(
            lambda: SegmentSnapshot.objects.filter(segment=segment, trigger="schedule").exists(),
            timeout=60, what="the scheduled first computation", logs=processes,
        )
        assert api.get(f"/api/v1/segments/{segment.pk}/changes/").json()["results"] == []

        # A contact, then its event, arrive through the API; the real-time path records the entry.
        response = api.post("/api/v1/contacts/bulk/", {"contacts": [{"external_id": "c-1"}]}, format="json")
        assert response.status_code == 200, response.content
        response = api.post(
            "/api/v1/events/bulk/",
            {"events": [{"contact": "c-1", "type": "email_open", "occurred_at": timezone.now().isoformat()}]},
            format="json",
        )
        assert response.status_code == 200, response.content
        feed = wait_for(
            lambda: api.get(f"/api/v1/segments/{segment.pk}/changes/").json()["results"],
            timeout=60, what="the entry in the change feed", logs=processes,
        )
        assert [(c["contact"], c["change"]) for c in feed] == [("c-1", "entered")]
        snapshots = api.get(f"/api/v1/segments/{segment.pk}/snapshots/").json()["results"]
        assert [(s["trigger"], s["size"], s["entered"]) for s in snapshots][0] == ("real_time", 1, 1)

        # The worker POSTed the entry to the endpoint, signed.
        wait_for(lambda: received, timeout=60, what="the webhook delivery", logs=processes)
        assert [(c["contact"], c["change"], c["cursor"]) for c in received[0]["changes"]] == [
            ("c-1", "entered", feed[0]["cursor"])
        ]


SLOW_MEMBER_WRITES = """
    CREATE OR REPLACE FUNCTION e2e_slow_member_writes() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_sleep(%s); RETURN NULL; END $$;
    CREATE TRIGGER e2e_slow_member_writes AFTER INSERT ON segments_app_segmentmember
        FOR EACH STATEMENT EXECUTE FUNCTION e2e_slow_member_writes();
"""


@contextmanager
def slow_member_writes(seconds: float) -> Iterator[None]:
    """Every INSERT into the member table sleeps inside its transaction (test-only trigger, dropped after)."""
    with connection.cursor() as cursor:
        cursor.execute(SLOW_MEMBER_WRITES % float(seconds))
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS e2e_slow_member_writes ON segments_app_segmentmember")
            cursor.execute("DROP FUNCTION IF EXISTS e2e_slow_member_writes()")


def sleeping_backend() -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'"
        )
        row = cursor.fetchone()
    return row[0] if row else None


def test_a_worker_killed_midway_leaves_the_old_membership_until_the_task_runs_again(
    workspace, processes, tasks_to_broker
):
    from segments_app.tasks import recompute_segment_task

    for name, country in [("a", "PL"), ("b", "PL"), ("c", "PL")]:
        make_contact(workspace, external_id=name, country=country)
    segment = Segment.objects.create(workspace=workspace, name="Poles", definition=POLISH, refresh_minutes=0)
    recompute_membership(segment_id=segment.pk, trigger="manual")
    Contact.objects.filter(external_id="a").update(country="DE")
    make_contact(workspace, external_id="d", country="PL")

    with slow_member_writes(600):
        worker = processes.worker()
        recompute_segment_task.delay(segment.pk, "manual")
        sent_at = time.monotonic()
        backend = wait_for(sleeping_backend, timeout=60, what="the recompute to be midway", logs=processes)
        # Midway: the diff is written inside the worker's open transaction; readers still see the old state.
        assert members(segment) == {"a", "b", "c"}

        processes.kill(worker, signal.SIGKILL)
        # The dead worker's session goes away (as PostgreSQL does once it notices the closed connection).
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
        wait_for(lambda: sleeping_backend() is None, timeout=30, what="the session to end")
        assert members(segment) == {"a", "b", "c"}
        assert SegmentSnapshot.objects.filter(segment=segment).count() == 1

    # The message was never acknowledged (acks_late): once its visibility timeout has passed, a new worker
    # gets it again and finishes the job.
    time.sleep(max(0.0, sent_at + 4 - time.monotonic()))
    processes.worker()
    wait_for(lambda: SegmentSnapshot.objects.filter(segment=segment).count() == 2, timeout=60,
             what="the redelivered recompute", logs=processes)
    assert members(segment) == {"b", "c", "d"}
    snapshot = SegmentSnapshot.objects.filter(segment=segment).latest("pk")
    assert (snapshot.trigger, snapshot.entered, snapshot.exited, snapshot.size) == ("manual", 1, 1, 3)


def test_two_concurrent_recomputes_give_one_consistent_result(workspace):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers itself; the segment lock is PostgreSQL's")
    for n in range(50):
        make_contact(workspace, external_id=f"p{n}", country="PL" if n % 2 else "DE")
    segment = Segment.objects.create(workspace=workspace, name="Poles", definition=POLISH)
    barrier = threading.Barrier(2)
    spans: list[tuple[float, float]] = []
    errors: list[BaseException] = []

    def recompute() -> None:
        try:
            barrier.wait()
            started = time.monotonic()
            recompute_membership(segment_id=segment.pk, trigger="manual")
            spans.append((started, time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    with slow_member_writes(1):  # each recompute holds the segment for a second: they must overlap
        threads = [threading.Thread(target=recompute) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert errors == []
    (first_start, first_end), (second_start, _) = sorted(spans)
    assert second_start < first_end  # they really ran at the same time
    snapshots = SegmentSnapshot.objects.filter(segment=segment).order_by("pk")
    assert [(s.size, s.entered, s.exited) for s in snapshots] == [(25, 25, 0), (25, 0, 0)]
    assert members(segment) == {f"p{n}" for n in range(50) if n % 2}
    assert segment.changes.count() == 25
