"""Living segments on the big data set: `python -m bench.membership` (DATABASE_URL must be PostgreSQL).

Runs against an existing seeded workspace (default "Demo Shop" of `manage.py seed_demo`, e.g. the
1,000,000-contact data set in database ds_bench) and leaves it as it found it: every segment, contact,
API key it creates is named `bench-membership-*` and deleted at the end.

1. recompute: picks the definition whose size is closest to --target-share of the contacts (about
   300,000 of 1,000,000), times its preview count (`segment_contacts(...).count()`, as the preview API
   runs it, and the same count with the catalog already built), then its stored-membership recomputes:
   the first one (everybody enters), one with nothing changed (must write nothing but the snapshot:
   checked on the member rows' xmin and the change log) and ones with a 1% diff (made by swapping 1% of
   the stored members for non-members, so the data set itself is never touched).
2. realtime: starts gunicorn and ONE Celery worker (`-P solo`), creates --events contacts through the
   API, then for each: POST one `email_open` event to /api/v1/events/bulk/ and poll the segment's
   /changes/ feed until the entry shows up (segment: opened an email in the last hour).
3. dispatch: creates --segments segments with refresh_minutes=15 and lets the dispatcher (run by this
   process every --tick seconds, restricted to these segments) and the same single worker compute them;
   then moves every computed_at 15 minutes back (15 minutes passing) and times the cycle that brings them
   all back: one worker keeps up when that cycle is shorter than 15 minutes.
The worker's memory (VmRSS) is sampled every second through parts 2 and 3.

Prints a markdown table and writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PREFIX = "bench-membership"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", default="Demo Shop")
    parser.add_argument("--parts", default="recompute,realtime,dispatch")
    parser.add_argument("--target-share", type=float, default=0.3, help="segment size as a share of contacts")
    parser.add_argument("--diff-runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--tick", type=float, default=10.0, help="dispatcher interval in seconds")
    parser.add_argument("--redis-db", type=int, default=12)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["CELERY_BROKER_URL"] = f"redis://127.0.0.1:6379/{args.redis_db}"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("DATABASE_URL must point at PostgreSQL")
    from contacts.models import Workspace

    workspace = Workspace.objects.get(name=args.workspace)
    contacts = workspace.contacts.count()
    parts = set(args.parts.split(","))
    report: dict = {
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.python_version()}, "
        f"{connection.cursor().connection.info.server_version}",
        "database": connection.settings_dict["NAME"],
        "workspace": args.workspace,
        "contacts": contacts,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _cleanup(workspace)
    stack = Stack(redis_db=args.redis_db)
    try:
        if "dispatch" in parts:
            dispatch_definitions(workspace, args.segments)  # enough distinct ones? fail before anything runs
        if "recompute" in parts:
            report["recompute"] = bench_recompute(workspace, contacts, args)
            print(json.dumps(report["recompute"], default=str), flush=True)
        if "realtime" in parts or "dispatch" in parts:
            stack.start_worker()
        if "realtime" in parts:
            report["realtime"] = bench_realtime(workspace, stack, args)
            print(json.dumps(report["realtime"], default=str), flush=True)
        if "dispatch" in parts:
            report["dispatch"] = bench_dispatch(workspace, stack, args)
        if stack.worker is not None:
            report["worker_memory_mb"] = stack.memory_summary()
    finally:
        stack.stop()
        _cleanup(workspace)
    print_report(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"membership-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nJSON: {path.relative_to(ROOT)}")


# --- part 1: recompute ------------------------------------------------------------------------------


def candidate_definitions() -> dict[str, dict]:
    def one(node: dict) -> dict:
        return {"match": "all", "conditions": [node]}

    return {
        "subscribed, ordered twice or more": {"match": "all", "conditions": [
            {"type": "attribute", "field": "email_status", "op": "eq", "value": "subscribed"},
            {"type": "attribute", "field": "orders_count", "op": "gte", "value": 2}]},
        "total spent over 200": one({"type": "attribute", "field": "total_spent", "op": "gt", "value": 200}),
        "ordered twice or more": one({"type": "attribute", "field": "orders_count", "op": "gte", "value": 2}),
        "opened an email in the last 90 days": one(
            {"type": "event", "event": "email_open", "window": {"last": 90, "unit": "days"}, "measure": "count",
             "op": "gte", "value": 1}),
        "seen in the last 30 days": one(
            {"type": "attribute", "field": "last_seen_at", "op": "in_last", "value": {"last": 30, "unit": "days"}}),
        "in PL, DE or GB": one({"type": "attribute", "field": "country", "op": "in", "value": ["PL", "DE", "GB"]}),
        "bought Acme in the last 12 months": one(
            {"type": "orders", "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
             "window": {"last": 12, "unit": "months"}, "measure": "count", "op": "gte", "value": 1}),
    }


def bench_recompute(workspace, contacts: int, args) -> dict:
    from django.db import connection
    from django.utils import timezone

    from segments_app.membership import recompute_membership, segment_matching
    from segments_app.models import Segment, SegmentChange, SegmentMember
    from segments_app.selectors import segment_contacts

    target = contacts * args.target_share
    sizes = {}
    for name, definition in candidate_definitions().items():
        sizes[name] = segment_contacts(workspace=workspace, definition=definition).count()
        print(f"  candidate {name!r}: {sizes[name]:,}", flush=True)
    name = min(sizes, key=lambda n: abs(sizes[n] - target))
    definition = candidate_definitions()[name]
    segment = Segment.objects.create(
        workspace=workspace, name=f"{PREFIX}-recompute", definition=definition, refresh_minutes=0
    )

    preview = timed_runs(lambda: segment_contacts(workspace=workspace, definition=definition).count(), 3)
    count_only = timed_runs(lambda: segment_matching(segment, now=timezone.now()).count(), 3)

    rss_before = rss_mb(os.getpid())
    first, first_s = timed(lambda: recompute_membership(segment_id=segment.pk, trigger="manual"))
    rss_after_first = rss_mb(os.getpid())
    versions = member_versions(segment.pk)
    changes_before = SegmentChange.objects.filter(segment=segment).count()
    same_runs = []
    for _ in range(3):  # the first run after a big insert also sets the new rows' hint bits: take the median
        same, seconds = timed(lambda: recompute_membership(segment_id=segment.pk, trigger="manual"))
        same_runs.append(seconds)
    same_s = statistics.median(same_runs)
    untouched = member_versions(segment.pk) == versions and SegmentChange.objects.filter(
        segment=segment
    ).count() == changes_before

    diffs = []
    swap = max(1, int(first.size * 0.01))
    for _ in range(args.diff_runs):
        with connection.cursor() as cursor:
            # 1% of the members leave the stored list and 1% of non-members join it: the next recompute
            # must put back the first (entered) and remove the second (exited).
            cursor.execute(
                "DELETE FROM segments_app_segmentmember WHERE id IN (SELECT id FROM segments_app_segmentmember"
                " WHERE segment_id = %s ORDER BY random() LIMIT %s) RETURNING contact_id",
                [segment.pk, swap],
            )
            removed = [row[0] for row in cursor.fetchall()]
            cursor.execute(
                "INSERT INTO segments_app_segmentmember (segment_id, contact_id, since)"
                " SELECT %s, c.id, now() FROM contacts_contact c WHERE c.workspace_id = %s"
                " AND NOT EXISTS (SELECT 1 FROM segments_app_segmentmember m"
                "                 WHERE m.segment_id = %s AND m.contact_id = c.id)"
                " AND c.id <> ALL(%s) LIMIT %s",
                [segment.pk, workspace.pk, segment.pk, removed, swap],
            )
        snapshot, seconds = timed(lambda: recompute_membership(segment_id=segment.pk, trigger="manual"))
        diffs.append({"seconds": seconds, "entered": snapshot.entered, "exited": snapshot.exited})
    rss_end = rss_mb(os.getpid())
    diff_median = statistics.median(d["seconds"] for d in diffs)
    result = {
        "definition": name,
        "size": first.size,
        "preview_count_s": preview,
        "count_with_catalog_cached_s": count_only,
        "first_recompute_s": first_s,
        "first_entered": first.entered,
        "nothing_changed_s": same_s,
        "nothing_changed_runs_s": same_runs,
        "nothing_changed_entered_exited": [same.entered, same.exited],
        "nothing_changed_wrote_only_the_snapshot": untouched,
        "diff_1pct_s": diffs,
        "diff_1pct_median_s": diff_median,
        "ratio_nothing_changed_to_preview": same_s / preview,
        "ratio_diff_to_preview": diff_median / preview,
        "ratio_diff_to_cached_count": diff_median / count_only,
        "process_rss_mb": {"before": rss_before, "after_first": rss_after_first, "end": rss_end},
        "members_stored": SegmentMember.objects.filter(segment=segment).count(),
    }
    segment.delete()
    return result


def member_versions(segment_id: int) -> tuple:
    """(rows, max xmin, sum of ids) of the segment's member rows: any rewrite changes the xmin."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), max(xmin::text::bigint), sum(id) FROM segments_app_segmentmember WHERE segment_id = %s",
            [segment_id],
        )
        return tuple(cursor.fetchone())


# --- part 2: real time ------------------------------------------------------------------------------


def bench_realtime(workspace, stack: Stack, args) -> dict:
    import requests
    from django.utils import timezone

    from contacts.models import ApiKey
    from segments_app.membership import recompute_membership
    from segments_app.models import RealtimeQueueEntry, RealtimeState, Segment, SegmentChange

    live = Segment.objects.filter(workspace=workspace, refresh_minutes__gt=0, computed_at__isnull=False).count()
    segment = Segment.objects.create(
        workspace=workspace,
        name=f"{PREFIX}-realtime",
        refresh_minutes=15,
        definition={"match": "all", "conditions": [
            {"type": "event", "event": "email_open", "window": {"last": 1, "unit": "hours"}, "measure": "count",
             "op": "gte", "value": 1}]},
    )
    recompute_membership(segment_id=segment.pk, trigger="manual")
    api_key = ApiKey(workspace=workspace, name=f"{PREFIX}-key")
    raw_key = api_key.set_new_key()
    api_key.save()
    base = stack.start_web()
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {raw_key}"})
    run = uuid.uuid4().hex[:8]
    ids = [f"{PREFIX}-{run}-{n}" for n in range(args.events)]
    response = session.post(f"{base}/api/v1/contacts/bulk/", json={"contacts": [{"external_id": i} for i in ids]})
    response.raise_for_status()
    wait(
        lambda: not RealtimeQueueEntry.objects.filter(workspace=workspace).exists()
        and not RealtimeState.objects.filter(workspace=workspace, task_pending=True).exists(),
        timeout=600,
    )
    last_change = SegmentChange.objects.filter(segment=segment).order_by("-pk").values_list("pk", flat=True).first()
    cursor = str(last_change or 0)
    latencies, ingest_times = [], []
    for external_id in ids:
        started = time.perf_counter()
        answer = session.post(
            f"{base}/api/v1/events/bulk/",
            json={"events": [
                {"contact": external_id, "type": "email_open", "occurred_at": timezone.now().isoformat()}
            ]},
        )
        ingest_times.append(time.perf_counter() - started)
        assert answer.status_code == 200 and answer.json()["created"] == 1, answer.text
        while True:
            feed = session.get(f"{base}/api/v1/segments/{segment.pk}/changes/", params={"after": cursor}).json()
            cursor = feed["next_cursor"] or cursor
            if any(c["contact"] == external_id and c["change"] == "entered" for c in feed["results"]):
                latencies.append(time.perf_counter() - started)
                break
            if time.perf_counter() - started > 60:
                raise RuntimeError(f"no entry for {external_id} after 60 s")
            time.sleep(0.02)
    stack.stop_web()
    api_key.delete()
    segment.delete()
    return {
        "events": len(latencies),
        "other_live_segments_in_workspace": live,
        "latency_s": summary(latencies),
        "ingest_call_s": summary(ingest_times),
    }


# --- part 3: the dispatcher -------------------------------------------------------------------------


def dispatch_definitions(workspace, count: int) -> list[dict]:
    """`count` distinct, fairly selective definitions of every kind (contact, tags, orders, events)."""
    from contacts.models import Contact, Product, Tag

    countries = sorted(
        Contact.objects.filter(workspace=workspace).exclude(country=None).values_list("country", flat=True).distinct()
    )[:15]
    products = Product.objects.filter(workspace=workspace)
    producers = sorted({p for p in products.values_list("producer", flat=True) if p})
    categories = sorted({p for p in products.values_list("category", flat=True) if p})
    tags = sorted(Tag.objects.filter(workspace=workspace).values_list("name", flat=True))
    a = lambda field, op, value=None: {"type": "attribute", "field": field, "op": op,  # noqa: E731
                                       **({"value": value} if value is not None else {})}
    defs: list[dict] = []
    for country in countries:
        for k in (2, 3, 5):
            defs.append({"match": "all", "conditions": [a("country", "eq", country), a("orders_count", "gte", k)]})
    for tag in tags:
        for status in ("subscribed", "unsubscribed"):
            defs.append({"match": "all", "conditions": [
                {"type": "tag", "op": "has_any", "value": [tag]}, a("email_status", "eq", status)]})
    for producer in producers:
        for months in (1, 3, 6):
            defs.append({"match": "all", "conditions": [{"type": "orders", "filters": [
                {"field": "product.producer", "op": "eq", "value": producer}],
                "window": {"last": months, "unit": "months"}, "measure": "count", "op": "gte", "value": 1}]})
    for category in categories:
        for amount in (100, 300, 600):
            defs.append({"match": "all", "conditions": [{"type": "orders", "filters": [
                {"field": "product.category", "op": "eq", "value": category}],
                "measure": "sum", "op": "gt", "value": amount}]})
    for event in ("email_open", "email_click", "cart_add", "app_open", "checkout_start", "product_view"):
        for days in (3, 7, 14):
            defs.append({"match": "all", "conditions": [{"type": "event", "event": event,
                         "window": {"last": days, "unit": "days"}, "measure": "count", "op": "gte", "value": 2}]})
    for low in range(0, 2000, 100):
        defs.append({"match": "all", "conditions": [a("total_spent", "between", [low, low + 50])]})
    for stage in ("new", "active", "returning", "inactive", "churned"):
        for country in countries[:4]:
            defs.append(
                {"match": "all", "conditions": [a("lifecycle_stage", "eq", stage), a("country", "eq", country)]}
            )
    for hours in (24, 48, 72, 168):
        defs.append({"match": "all", "conditions": [a("cart_open_since", "in_last", {"last": hours, "unit": "hours"})]})
    for score in range(40, 100, 5):
        defs.append({"match": "all", "conditions": [a("engagement_score", "gte", score)]})
    for days in (90, 180, 365):
        for k in (3, 5):
            defs.append({"match": "all", "conditions": [
                a("orders_count", "gte", k), a("last_order_at", "not_in_last", {"last": days, "unit": "days"})]})
    if len(defs) < count:
        raise SystemExit(f"only {len(defs)} distinct definitions for {count} segments")
    return defs[:count]


def bench_dispatch(workspace, stack: Stack, args) -> dict:
    from django.db.models import F, Sum
    from django.utils import timezone

    from segments_app.dispatch import dispatch_due_segments
    from segments_app.models import Segment, SegmentSnapshot

    segments = [
        Segment.objects.create(
            workspace=workspace, name=f"{PREFIX}-dispatch-{n:03d}", definition=definition, refresh_minutes=15
        )
        for n, definition in enumerate(dispatch_definitions(workspace, args.segments))
    ]
    ids = [s.pk for s in segments]

    def cycle(label: str) -> dict:
        started_at = timezone.now()
        started = time.perf_counter()
        ticks = 0
        while True:
            dispatch_due_segments(segment_ids=ids)
            ticks += 1
            deadline = time.perf_counter() + args.tick
            while time.perf_counter() < deadline:
                done = Segment.objects.filter(pk__in=ids, computed_at__gte=started_at).count()
                if done == len(ids):
                    break
                time.sleep(0.5)
            failed = Segment.objects.filter(pk__in=ids, status="failed").values_list("pk", "last_error")[:3]
            if failed:
                raise RuntimeError(f"{label}: failed segments {list(failed)}")
            if Segment.objects.filter(pk__in=ids, computed_at__gte=started_at).count() == len(ids):
                break
        wall = time.perf_counter() - started
        snapshots = SegmentSnapshot.objects.filter(segment_id__in=ids, computed_at__gte=started_at, trigger="schedule")
        totals = snapshots.aggregate(ms=Sum("duration_ms"), entered=Sum("entered"), exited=Sum("exited"))
        durations = sorted(snapshots.values_list("duration_ms", flat=True))
        print(f"  dispatch {label}: {wall:.0f} s wall for {len(ids)} segments", flush=True)
        return {
            "wall_s": wall,
            "ticks": ticks,
            "sum_recompute_s": (totals["ms"] or 0) / 1000,
            "recompute_ms": {"p50": durations[len(durations) // 2], "max": durations[-1]},
            "entered": totals["entered"],
            "exited": totals["exited"],
        }

    first = cycle("first computation")
    # A first cycle longer than the interval already re-dispatches its early segments: let those finish
    # so that none is in flight when the clock is moved.
    wait(lambda: not Segment.objects.filter(pk__in=ids, status="computing").exists(), timeout=3600)
    sizes = sorted(Segment.objects.filter(pk__in=ids).values_list("size", flat=True))
    # Fifteen minutes pass: every segment is due again.
    Segment.objects.filter(pk__in=ids).update(computed_at=F("computed_at") - timedelta(minutes=15))
    steady = cycle("15 minutes later")
    Segment.objects.filter(pk__in=ids).delete()
    return {
        "segments": len(ids),
        "refresh_minutes": 15,
        "sizes": {"min": sizes[0], "median": sizes[len(sizes) // 2], "max": sizes[-1], "sum": sum(sizes)},
        "first_cycle": first,
        "steady_cycle": steady,
        "keeps_up": steady["wall_s"] < 15 * 60,
        "steady_utilisation": steady["wall_s"] / (15 * 60),
    }


# --- processes --------------------------------------------------------------------------------------


class Stack:
    """One Celery worker (and, for part 2, gunicorn) on this database and Redis db --redis-db."""

    def __init__(self, redis_db: int) -> None:
        self.redis_db = redis_db
        self.worker: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.samples: list[float] = []
        self._sampling = threading.Event()
        self.logs = RESULTS / "membership-logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(CELERY_BROKER_URL=f"redis://127.0.0.1:6379/{self.redis_db}", PYTHONUNBUFFERED="1")
        return env

    def start_worker(self) -> None:
        import redis

        redis.Redis.from_url(f"redis://127.0.0.1:6379/{self.redis_db}").flushdb()
        log = (self.logs / "worker.log").open("w")
        celery = str(Path(sys.executable).with_name("celery"))
        self.worker = subprocess.Popen(
            [celery, "-A", "config", "worker", "-P", "solo", "--loglevel=WARNING", "-n", f"{PREFIX}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        time.sleep(3)
        if self.worker.poll() is not None:
            raise RuntimeError(f"worker did not start; see {self.logs / 'worker.log'}")
        self._sampling.set()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while self._sampling.is_set() and self.worker is not None and self.worker.poll() is None:
            self.samples.append(rss_mb(self.worker.pid))
            time.sleep(1)

    def memory_summary(self) -> dict:
        samples = [s for s in self.samples if s]
        return {"first": samples[0], "max": max(samples), "last": samples[-1], "samples": len(samples)}

    def start_web(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = self.env()
        env.update(DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="127.0.0.1",
                   SECURE_SSL_REDIRECT="0", API_RATE_LIMIT="100000/min")
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self.web = subprocess.Popen(
            [gunicorn, "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            cwd=ROOT, env=env, stdout=(self.logs / "web.log").open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        import requests

        wait(lambda: _answers(requests, f"{base}/healthz"), timeout=60)
        return base

    def stop_web(self) -> None:
        _stop(self.web)
        self.web = None

    def stop(self) -> None:
        self._sampling.clear()
        self.stop_web()
        _stop(self.worker)


def _answers(requests, url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code in (200, 503)
    except requests.RequestException:
        return False


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# --- helpers ----------------------------------------------------------------------------------------


def _cleanup(workspace) -> None:
    from contacts.models import ApiKey, Contact
    from segments_app.models import Segment

    Segment.objects.filter(workspace=workspace, name__startswith=PREFIX).delete()
    Contact.objects.filter(workspace=workspace, external_id__startswith=PREFIX).delete()
    ApiKey.objects.filter(workspace=workspace, name__startswith=PREFIX).delete()


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def timed_runs(call, runs: int) -> float:
    return statistics.median(timed(call)[1] for _ in range(runs))


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "p50": ordered[len(ordered) // 2],
        "p95": ordered[max(0, int(round(len(ordered) * 0.95)) - 1)],
        "max": ordered[-1],
    }


def wait(check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError("timed out")


def print_report(r: dict) -> None:
    print(f"\n## Membership benchmark ({r['date']})\n")
    print(f"{r['contacts']:,} contacts in workspace {r['workspace']!r}, database {r['database']}; {r['machine']}\n")
    print("| measure | value | target |")
    print("|---|---:|---|")
    if "recompute" in r:
        c = r["recompute"]
        print(f"| segment ({c['definition']}) | {c['size']:,} members | about 30% |")
        print(f"| preview count (as the API runs it) | {c['preview_count_s']:.2f} s | |")
        print(f"| count with the field catalog cached | {c['count_with_catalog_cached_s']:.2f} s | |")
        print(f"| first recompute ({c['first_entered']:,} entered) | {c['first_recompute_s']:.2f} s | |")
        print(f"| recompute, nothing changed, median of 3 | {c['nothing_changed_s']:.2f} s "
              f"({c['ratio_nothing_changed_to_preview']:.2f}x preview) | <= 2x preview |")
        print(f"| ... wrote nothing but the snapshot | {c['nothing_changed_wrote_only_the_snapshot']} | True |")
        d = c["diff_1pct_s"][0]
        print(f"| recompute with a 1% diff (+{d['entered']:,} -{d['exited']:,}), median | "
              f"{c['diff_1pct_median_s']:.2f} s ({c['ratio_diff_to_preview']:.2f}x preview, "
              f"{c['ratio_diff_to_cached_count']:.2f}x cached count) | <= 2x preview |")
        m = c["process_rss_mb"]
        print(f"| process RSS before / after first / end | {m['before']:.0f} / {m['after_first']:.0f} / "
              f"{m['end']:.0f} MB | flat |")
    if "realtime" in r:
        t = r["realtime"]
        print(f"| event via API -> entry in change feed, p50 / p95 / max ({t['events']} events) | "
              f"{t['latency_s']['p50']:.2f} / {t['latency_s']['p95']:.2f} / {t['latency_s']['max']:.2f} s | "
              "p95 <= 2 s |")
        print(f"| ... of which the ingest call, p50 / p95 | {t['ingest_call_s']['p50']:.3f} / "
              f"{t['ingest_call_s']['p95']:.3f} s | |")
    if "dispatch" in r:
        d = r["dispatch"]
        f, s = d["first_cycle"], d["steady_cycle"]
        print(f"| {d['segments']} segments (refresh 15 min), sizes median / max | {d['sizes']['median']:,} / "
              f"{d['sizes']['max']:,} | |")
        print(f"| first computation of all, one worker | {f['wall_s']:.0f} s (+{f['entered']:,}) | |")
        print(f"| steady cycle of all {d['segments']} (15 min later), one worker | {s['wall_s']:.0f} s "
              f"({d['steady_utilisation']:.0%} of 15 min; recompute p50 {s['recompute_ms']['p50']} ms, "
              f"max {s['recompute_ms']['max']} ms) | < 15 min |")
    if "worker_memory_mb" in r:
        w = r["worker_memory_mb"]
        print(f"| worker RSS first / max / last | {w['first']:.0f} / {w['max']:.0f} / {w['last']:.0f} MB | flat |")


if __name__ == "__main__":
    main()
