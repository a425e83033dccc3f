"""Bulk ingest throughput through a real server: `python -m bench.ingest` (DATABASE_URL must be PostgreSQL).

1. Prepares a workspace of --contacts contacts (default 100,000) with `manage.py seed_demo`, reused on
   later runs, and an API key for it.
2. Starts gunicorn (DEBUG=0, a throwaway SECRET_KEY, --workers sync workers) on 127.0.0.1.
3. Posts pre-built 1,000-record batches from --threads concurrent client threads: new events to
   /api/v1/events/bulk/, then new orders of 3 items each to /api/v1/orders/bulk/. Every batch is checked
   (200, 1,000 created, no errors); the computed-figure upkeep runs inside each call, so it is included.
4. Prints a markdown table (records/s, p50/p95 batch latency) with the machine, writes JSON under
   bench/results/, and stops the server.

Targets: >= 5,000 events/s and >= 2,000 orders/s, sustained over 100,000 of each (the default batches). The
client, gunicorn and PostgreSQL share the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGETS = {"events": 5_000, "orders": 2_000}
BATCH = 1_000
EVENT_MIX = [
    ("page_view", 35),
    ("product_view", 20),
    ("email_open", 15),
    ("email_click", 5),
    ("cart_add", 10),
    ("app_open", 10),
    ("wishlist_add", 5),
]
DEVICES = ["mobile", "desktop", "tablet", None]
SOURCES = ["direct", "organic", "paid_search", "paid_social", "email", None]


@dataclass
class PhaseResult:
    kind: str
    batches: int
    records: int
    seconds: float
    per_second: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    target: int
    server_cpu_s: float  # gunicorn processes + PostgreSQL backends of the bench database
    client_cpu_s: float
    load_average: float  # 1-minute load average at the end: how busy the shared machine was

    @property
    def met(self) -> bool:
        return self.per_second >= self.target

    @property
    def idle_capacity(self) -> int:
        """Records/s this workload would reach if server and client had every core of the machine to
        themselves: records per CPU-second (server + client) times the number of cores."""
        cpu = self.server_cpu_s + self.client_cpu_s
        return round(self.records / cpu * (os.cpu_count() or 1)) if cpu else 0


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def prepare_workspace(name: str, contacts: int, seed: int) -> tuple[int, str, list[str], list[tuple[str, str]]]:
    """The bench workspace (seeded once), a fresh API key, its contacts' external ids and (sku, price) pairs."""
    from django.core.management import call_command

    from contacts.api_keys import issue_api_key
    from contacts.models import Contact, Product, Workspace

    workspace = Workspace.objects.filter(name=name).first()
    have = Contact.objects.filter(workspace=workspace).count() if workspace else 0
    if have != contacts:
        print(f"Seeding {contacts:,} contacts into {name!r} (had {have:,}) ...", flush=True)
        call_command("seed_demo", contacts=contacts, workspace=name, seed=seed, reset=have > 0)
        workspace = Workspace.objects.get(name=name)
    _, raw_key, _ = issue_api_key(workspace_name=name, key_name="bench.ingest")
    external_ids = list(Contact.objects.filter(workspace=workspace).values_list("external_id", flat=True))
    products = [
        (sku, str(price or "9.99"))
        for sku, price in Product.objects.filter(workspace=workspace).values_list("sku", "price")
    ]
    return workspace.pk, raw_key, external_ids, products


def event_batches(count: int, external_ids: list[str], run_id: str, rng: random.Random) -> list[bytes]:
    types = [name for name, weight in EVENT_MIX for _ in range(weight)]
    now = datetime.now(UTC)
    batches = []
    for b in range(count):
        events = []
        for n in range(BATCH):
            event_type = rng.choice(types)
            event = {
                "contact": rng.choice(external_ids),
                "type": event_type,
                "occurred_at": (now - timedelta(seconds=rng.randrange(30 * 86400))).isoformat(),
                "device": rng.choice(DEVICES),
                "url": f"https://shop.example/p/{rng.randrange(5000)}",
                "event_id": f"bench-{run_id}-{b}-{n}",
                "properties": {"sku": f"SKU-{rng.randrange(5000)}"},
            }
            if event_type.startswith("email_"):
                event["campaign"] = f"campaign-{rng.randrange(20)}"
            events.append(event)
        batches.append(json.dumps({"events": events}).encode())
    return batches


def order_batches(
    count: int, external_ids: list[str], products: list[tuple[str, str]], run_id: str, rng: random.Random
) -> list[bytes]:
    now = datetime.now(UTC)
    batches = []
    for b in range(count):
        orders = []
        for n in range(BATCH):
            items = [
                {"sku": sku, "quantity": rng.randint(1, 3), "unit_price": price}
                for sku, price in rng.sample(products, 3)
            ]
            orders.append(
                {
                    "external_id": f"bench-{run_id}-{b}-{n}",
                    "contact": rng.choice(external_ids),
                    "ordered_at": (now - timedelta(seconds=rng.randrange(365 * 86400))).isoformat(),
                    "source": rng.choice(SOURCES),
                    "items": items,
                }
            )
        batches.append(json.dumps({"orders": orders}).encode())
    return batches


def start_server(port: int, workers: int, pg_options: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "API_RATE_LIMIT": "1000000/min",
        "LOG_LEVEL": "WARNING",
        # Workers keep their database sessions for the whole run, so the CPU those sessions use can be counted.
        "DB_CONN_MAX_AGE": "3600",
    }
    if pg_options:
        env["PGOPTIONS"] = pg_options  # libpq reads it: per-session PostgreSQL settings of the server's connections
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "config.wsgi:application",
        f"--workers={workers}",
        f"--bind=127.0.0.1:{port}",
        "--timeout=300",
        "--log-level=warning",
    ]
    # Own process group, so stopping it stops every worker and nothing else.
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def free_port() -> int:
    """A port nobody listens on now (other engineers run servers on this machine too)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def wait_until_ready(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            if requests.get(f"{base}/healthz", timeout=5).status_code == 200 and server.poll() is None:
                return
        except requests.RequestException:
            pass  # not listening yet, or still booting its workers
        time.sleep(0.3)
    raise SystemExit("the server did not become ready in time")


def post_batches(url: str, key: str, batches: list[bytes], threads: int) -> tuple[float, list[float]]:
    """Post every batch from `threads` threads; returns (wall seconds, per-batch latencies in seconds)."""
    sessions: dict[int, requests.Session] = {}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(body: bytes) -> float:
        import threading

        session = sessions.setdefault(threading.get_ident(), requests.Session())
        started = time.perf_counter()
        response = session.post(url, data=body, headers=headers, timeout=300)
        elapsed = time.perf_counter() - started
        answer = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
        if response.status_code != 200 or answer.get("created") != BATCH or answer.get("errors"):
            raise SystemExit(f"batch refused: {response.status_code} {response.text[:500]}")
        return elapsed

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        latencies = list(pool.map(post, batches))
    return time.perf_counter() - started, latencies


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process, or 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pids(server: subprocess.Popen) -> list[int]:
    """The gunicorn master and workers (its process group) and the PostgreSQL backends of our database."""
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    group = []
    for pid in pids:
        try:
            if os.getpgid(pid) == server.pid:
                group.append(pid)
        except OSError:
            continue
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        backends = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    return group + backends


def measure(kind: str, url: str, key: str, batches: list[bytes], threads: int, server: subprocess.Popen) -> PhaseResult:
    before = {pid: _cpu_seconds(pid) for pid in server_pids(server)}
    client_before = sum(os.times()[:2])
    seconds, latencies = post_batches(url, key, batches, threads)
    client_cpu = sum(os.times()[:2]) - client_before
    # Backends that started during the phase count from zero; those that ended are missed (workers keep theirs).
    server_cpu = sum(_cpu_seconds(pid) - before.get(pid, 0.0) for pid in server_pids(server))
    ordered = sorted(latencies)
    records = len(batches) * BATCH
    return PhaseResult(
        server_cpu_s=round(server_cpu, 2),
        client_cpu_s=round(client_cpu, 2),
        load_average=round(os.getloadavg()[0], 1),
        kind=kind,
        batches=len(batches),
        records=records,
        seconds=round(seconds, 2),
        per_second=round(records / seconds),
        p50_ms=round(statistics.median(ordered) * 1000),
        p95_ms=round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000),
        max_ms=round(ordered[-1] * 1000),
        target=TARGETS[kind],
    )


def machine() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown",
    )
    memory_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "postgresql": postgres,
        "python": platform.python_version(),
        "note": "client threads, gunicorn workers and PostgreSQL all share these cores",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--workspace", default="Bench 100k")
    parser.add_argument("--event-batches", type=int, default=100, help="1,000 events each")
    parser.add_argument("--order-batches", type=int, default=100, help="1,000 orders of 3 items each")
    parser.add_argument("--threads", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--pg-options",
        default="",
        help='PostgreSQL settings for the server\'s sessions, e.g. "-c random_page_cost=1.1" (SSD-like costs)',
    )
    args = parser.parse_args(argv)

    setup_django()
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("bench.ingest measures PostgreSQL: set DATABASE_URL=postgres://...")

    workspace_id, key, external_ids, products = prepare_workspace(args.workspace, args.contacts, args.seed)
    rng = random.Random(args.seed)
    run_id = uuid.uuid4().hex[:8]
    print(f"Building {args.event_batches} event and {args.order_batches} order batches ...", flush=True)
    warm_events = event_batches(2, external_ids, run_id + "w", rng)
    warm_orders = order_batches(2, external_ids, products, run_id + "w", rng)
    events = event_batches(args.event_batches, external_ids, run_id, rng)
    orders = order_batches(args.order_batches, external_ids, products, run_id, rng)
    connection.close()  # the server's workers should not compete with an idle connection of ours

    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port, args.workers, args.pg_options)
    try:
        wait_until_ready(base, server)
        post_batches(f"{base}/api/v1/events/bulk/", key, warm_events, args.threads)
        post_batches(f"{base}/api/v1/orders/bulk/", key, warm_orders, args.threads)
        print("Measuring ...", flush=True)
        results = [
            measure("events", f"{base}/api/v1/events/bulk/", key, events, args.threads, server),
            measure("orders", f"{base}/api/v1/orders/bulk/", key, orders, args.threads, server),
        ]
    finally:
        stop_server(server)

    host = machine()
    lines = [
        f"Bulk ingest on {args.contacts:,} contacts: gunicorn {args.workers} sync workers, {args.threads} client "
        f"threads, batches of {BATCH:,} (orders of 3 items), figure upkeep included; "
        f"PostgreSQL session options: {args.pg_options or 'none (server defaults)'}.",
        "",
        "| kind | batches | records | seconds | records/s | target | met | p50 batch ms | p95 batch ms | max ms "
        "| server CPU s | client CPU s | records/s on idle cores | load avg |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.kind} | {r.batches} | {r.records:,} | {r.seconds} | {r.per_second:,} | {r.target:,} | "
            f"{'yes' if r.met else 'NO'} | {r.p50_ms} | {r.p95_ms} | {r.max_ms} | {r.server_cpu_s} | "
            f"{r.client_cpu_s} | {r.idle_capacity:,} | {r.load_average} |"
        )
    lines += [
        "",
        f"Machine: {host['cores']} cores ({host['cpu']}), {host['memory_gib']} GiB, PostgreSQL {host['postgresql']}, "
        f"Python {host['python']}; {host['note']}.",
        "records/s on idle cores = records / (server + client CPU seconds) x cores: what the same work reaches "
        "when nothing else runs on the machine (the measured records/s depend on the other load, see load avg).",
    ]
    print("\n".join(lines))

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"ingest-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    payload = {
        "benchmark": "ingest",
        "at": datetime.now(UTC).isoformat(),
        "contacts": args.contacts,
        "workspace_id": workspace_id,
        "workers": args.workers,
        "threads": args.threads,
        "pg_options": args.pg_options,
        "batch": BATCH,
        "results": [{**asdict(r), "met": r.met, "idle_capacity": r.idle_capacity} for r in results],
        "machine": host,
    }
    path.write_text(json.dumps(payload, indent=2))
    print(f"\nWrote {path.relative_to(ROOT)}")
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
