"""Reporting: the consumers' throughput building its store from a synthetic population of
100,000 cases, next to the raw consume rate of the same topic, and the evaluation endpoint's
latency over that population under a live stream: before each question a new case is
published and derived, so every answer is a first answer after a change (the facts of the
changed case read again, its part of the facts tallied again). Targets: p95 under 500 ms at
100,000 cases (issue 4), under 200 ms at 1,000,000 (issue 21); at 1,000,000 the first answer
after a restart under 3 s and the service under 2 GiB (issue 21).
"""

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from services.reporting.store import ReportingStore
from shared.catalog import Catalog
from shared.events import StreamEvent
from shared.stream.kafka import KafkaPublisher
from tests.bench.access import AUTHORIZATION
from tests.bench.obligations import CASES, TOPIC, peak_rss, publish_history, raw_consume, rebuild
from tests.bench.steal import CpuSteal
from tests.infra import connect_admin, free_port, fresh_database, kafka_broker

QUERIES = [("T11", ""), ("T11", "?from=2019-01-01&to=2019-12-31"), ("T2", ""), ("T6", "?comparison=751,461,561")]
REPEATS = 10


def reporting_store(engine: Engine) -> ReportingStore:
    return ReportingStore(engine, Catalog.load(), group="bench")


def new_case(publisher: KafkaPublisher, i: int) -> None:
    """A citizen on ledighedsydelse in Aalborg (a T11 municipality) from 2019, with a conversation."""
    case_id, position = f"live-{i}", 10**9 + 3 * i
    events = [("case.opened", {"date": "2019-01-01", "municipality": "851", "citizen": f"live-{i}"}),
              ("benefit.started", {"date": "2019-01-01", "benefit": "ledighedsydelse"}),
              ("conversation.held", {"date": "2019-03-01", "kind": "jobsamtale"})]
    publisher.publish([StreamEvent(f"{case_id}-{n}", "bench", f"dk.frisag.{name}", case_id, None, data, n, position + n)
                       for n, (name, data) in enumerate(events, start=1)])


@dataclass
class Latencies:
    """Seconds per GET /trials/{trial}/evaluation, and the service process's peak memory."""

    started: list[float]  # the first answers after a start without a snapshot (the first: from the start)
    restarted: float  # process started again (its snapshot written at the stop) -> first answer
    after_change: list[float]
    repeated: list[float]
    peak_rss: int  # bytes, the larger of the two processes' (VmHWM)


def latencies(database_url: str, kafka: str, store: ReportingStore) -> Latencies:
    """The first answers after the service started (all facts read from the database), answers
    after a change, the same question repeated; then the service stopped and started again over
    the snapshot of its facts it wrote at the stop, and asked at once."""
    port = free_port()
    data = tempfile.TemporaryDirectory()
    env = {**os.environ, "DATABASE_URL": database_url, "RUN_CONSUMER": "false", "REPORTING_GROUP": "bench",
           "DATA_DIR": data.name}
    base = f"http://127.0.0.1:{port}"

    def serve() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "uvicorn", "services.reporting.api:app", "--port", str(port),
                                 "--log-level", "warning", "--no-access-log"], env=env)

    def ask(trial: str, query: str) -> float:
        start = time.perf_counter()
        request = urllib.request.Request(f"{base}/trials/{trial}/evaluation{query}",
                                         headers={"Authorization": AUTHORIZATION})
        with urllib.request.urlopen(request, timeout=300) as answer:
            answer.read()
        return time.perf_counter() - start

    def ready() -> None:
        """Until the service says it is ready: its facts read (minutes at a million cases without a
        snapshot; a question asked meanwhile waits past the request limit and is answered 503)."""
        deadline = time.monotonic() + 1800
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=5):
                    return
            except OSError:  # not listening yet, or not ready
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # asked often: the restart's figure is the service's, not the asking's

    def stop(server: subprocess.Popen) -> int:
        peak = peak_rss(server.pid)
        server.terminate()
        server.wait(timeout=60)
        return peak

    publisher = KafkaPublisher(kafka, TOPIC)
    begun = time.perf_counter()
    server = serve()
    try:
        ready()
        waited = time.perf_counter() - begun
        started = [ask(trial, query) for trial, query in QUERIES]
        started[0] += waited  # the first: from the start
        after_change, repeated = [], []
        for i in range(REPEATS):
            for j, (trial, query) in enumerate(QUERIES):
                tick = store.tick()
                new_case(publisher, i * len(QUERIES) + j)
                while store.tick() == tick:
                    time.sleep(0.01)
                after_change.append(ask(trial, query))
                repeated.append(ask(trial, query))
        peak = stop(server)
        begun = time.perf_counter()
        server = serve()
        ready()
        ask(*QUERIES[0])
        restarted = time.perf_counter() - begun
        return Latencies(started, restarted, after_change, repeated, max(peak, stop(server)))
    finally:
        publisher.close()
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=60)
        data.cleanup()


def main(then: Callable[[str, str, int], None] | None = None) -> None:
    """The benchmark, then `then(database_url, kafka, events)` over the store it built, while
    the store and the broker are still there (the what-if benchmark: no second population)."""
    with connect_admin() as admin, kafka_broker() as kafka, fresh_database(admin) as url:
        events = publish_history(kafka, CASES)
        print(f"\nreporting: {CASES:,} synthetic cases, {events:,} events")
        with CpuSteal() as steal:
            raw = raw_consume(kafka, events)
            processes = os.cpu_count() or 1
            rate, store, stop_consumers = rebuild(reporting_store, url, kafka, events, processes)
            with store.engine.begin() as conn:  # PostgreSQL's advice after a bulk load; autovacuum would within a minute
                conn.exec_driver_sql("ANALYZE")
            latency = latencies(url, kafka, store)
            stop_consumers()
            store.engine.dispose()
        report(raw, processes, rate, latency, steal)
        if then is not None:
            then(url, kafka, events)


def report(raw: float, processes: int, rate: float, latency: Latencies, steal: CpuSteal) -> None:
    print(f"{'measure':<55}{'value':>12}{'x raw':>8}  target")
    print(f"{'raw kafka-python consume, events/s':<55}{raw:>12,.0f}{1:>8.2f}")
    print("    clock: seek to the topic's start -> every message polled (no decoding into events)")
    print(f"{f'store from scratch, {processes} consumer processes, events/s':<55}{rate:>12,.0f}{rate / raw:>8.2f}")
    print("    clock: consumer processes started -> every event's position stored and no case stale")
    print(f"{'evaluation, first answer after start (all facts read), s':<55}{latency.started[0]:>12.2f}")
    print("    clock: the first GET /trials/T11/evaluation sent to the just-started service, no snapshot of its\n"
          "    facts -> its answer read")
    print(f"{'evaluation, first answer after a restart, s':<55}{latency.restarted:>12.2f}{'':>8}  "
          f"< 3 s: {'met' if latency.restarted < 3 else 'MISSED'}")
    print("    clock: the service process started again (the snapshot of its facts written at its stop) ->\n"
          "    the answer to GET /trials/T11/evaluation, asked until it listens, read")
    limit = 200 if CASES >= 1_000_000 else 500  # ms: issue 21's target at a million cases, issue 4's below
    for name, seconds in (("after a change", latency.after_change), ("repeated", latency.repeated)):
        p95 = sorted(seconds)[int(0.95 * len(seconds)) - 1]
        print(f"{f'evaluation, {name}, p95 ms':<55}{p95 * 1000:>12.0f}{'':>8}  < {limit} ms: "
              f"{'met' if p95 * 1000 < limit else 'MISSED'}")
    print("    clock (both): GET /trials/{trial}/evaluation sent -> its answer read; after a change: asked once\n"
          "    the new case is derived in the store (its derivation is not in the time)")
    print(f"{'reporting service process, peak RSS, MiB':<55}{latency.peak_rss / 2**20:>12,.0f}{'':>8}  < 2 GiB: "
          f"{'met' if latency.peak_rss < 2**31 else 'MISSED'}")
    print(f"cpu steal during the run: {steal.share:.0%}")
