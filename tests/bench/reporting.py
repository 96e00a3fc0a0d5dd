"""Reporting: the consumer's throughput building its store from a synthetic population of
100,000 cases, next to the raw consume rate of the same topic, and the evaluation endpoint's
latency over that population (the first answer after the store changed, and repeated ones).
Target (issue 4): p95 under 500 ms.
"""

import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

from sqlalchemy import create_engine

from services.reporting.store import ReportingStore
from shared.catalog import Catalog
from shared.consumer import Consumer, worker_pool
from shared.stream.kafka import KafkaStream
from tests.bench.access import AUTHORIZATION
from tests.bench.obligations import (
    CASES,
    PARTITIONS,
    TOPIC,
    publish_history,
    raw_consume,
)
from tests.bench.steal import CpuSteal
from tests.infra import connect_admin, free_port, fresh_database, kafka_broker

QUERIES = [("T11", ""), ("T11", "?from=2019-01-01&to=2019-12-31"), ("T2", ""), ("T6", "?comparison=751,461,561")]
REPEATS = 10


def build(database_url: str, kafka: str, expected: int) -> float:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    store = ReportingStore(engine, Catalog.load(), group="bench")
    pool = worker_pool(None, database_url)
    stream = KafkaStream(kafka, TOPIC, session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_records=5000)
    stop = threading.Event()
    consumer = threading.Thread(target=Consumer(store, stream, "bench", pool=pool).run, args=(stop,))
    start = time.perf_counter()
    consumer.start()
    while not (sum(store.resume_from(p) or 0 for p in range(PARTITIONS)) >= expected and store.counts()["stale"] == 0):
        time.sleep(0.5)
    elapsed = time.perf_counter() - start
    stop.set()
    consumer.join()
    pool.shutdown()
    engine.dispose()
    return expected / elapsed


def latencies(database_url: str) -> tuple[list[float], list[float]]:
    """Seconds per GET /trials/{trial}/evaluation: first answers to each query, and repeats."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "RUN_CONSUMER": "false", "REPORTING_GROUP": "bench"}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "services.reporting.api:app", "--port", str(port),
                               "--log-level", "warning", "--no-access-log"], env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        first, repeated = [], []
        for trial, query in QUERIES:
            for i in range(REPEATS):
                start = time.perf_counter()
                request = urllib.request.Request(f"{base}/trials/{trial}/evaluation{query}",
                                                 headers={"Authorization": AUTHORIZATION})
                with urllib.request.urlopen(request, timeout=300) as answer:
                    answer.read()
                (first if i == 0 else repeated).append(time.perf_counter() - start)
        return first, repeated
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    with connect_admin() as admin, kafka_broker() as kafka, fresh_database(admin) as url:
        events = publish_history(kafka, CASES)
        print(f"\nreporting: {CASES:,} synthetic cases, {events:,} events")
        with CpuSteal() as steal:
            raw = raw_consume(kafka, events)
            rate = build(url, kafka, events)
            first, repeated = latencies(url)
    p95 = sorted(repeated)[int(0.95 * len(repeated)) - 1]
    print(f"{'measure':<55}{'value':>12}{'x raw':>8}  target")
    print(f"{'raw kafka-python consume, events/s':<55}{raw:>12,.0f}{1:>8.2f}")
    print(f"{'reporting consumer (store + derive), events/s':<55}{rate:>12,.0f}{rate / raw:>8.2f}")
    print(f"{'evaluation, first answer after a change, median s':<55}{statistics.median(first):>12.2f}")
    print(f"{'evaluation, repeated, p95 ms':<55}{p95 * 1000:>12.0f}{'':>8}  < 500 ms: {'met' if p95 < 0.5 else 'MISSED'}")
    print(f"cpu steal during the run: {steal.share:.0%}")
