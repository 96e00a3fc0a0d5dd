"""Ingest throughput of the case service on PostgreSQL + a Kafka-protocol broker,
next to the raw kafka-python produce rate and a naive one-event-per-transaction save, all
measured in the same run on the same machine. Figures are events per second; the ratios are
what carries over to other machines.

Targets (issue 2): batch ingest >= 5,000 events/s and single POSTs from 32 concurrent clients
>= 1,000 events/s, both end to end: stored, and published to the topic.
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

from services.case.bootstrap import build_cases
from services.case.domain import Case
from services.case.ingest import Ingest
from services.case.relay import tracking_name
from services.case.settings import CaseSettings
from services.case.stream_events import stream_events
from shared.events import parse_event
from shared.stream.kafka import KafkaPublisher
from tests.bench.access import AUTHORIZATION
from tests.bench.load import post_all
from tests.bench.steal import CpuSteal
from tests.infra import connect_admin, free_port, fresh_database, kafka_broker, wait_for_port

BATCH_EVENTS = int(os.environ.get("BENCH_BATCH_EVENTS", "60000"))
SINGLE_EVENTS = int(os.environ.get("BENCH_SINGLE_EVENTS", "12000"))
NAIVE_EVENTS = int(os.environ.get("BENCH_NAIVE_EVENTS", "2000"))
CLIENTS = 32


def case_events(prefix: str, cases: int, per_case: int) -> list[dict]:
    """A realistic mix: each case opened, a benefit started, then conversations."""
    documents = []
    for i in range(cases):
        case_id = f"{prefix}-{i}"
        documents.append(_event("case.opened", case_id, f"{prefix}-{i}-0", cpr=f"{i % 28 + 1:02d}0190-{i % 10000:04d}",
                                municipality="851", date="2019-01-01"))
        documents.append(_event("benefit.started", case_id, f"{prefix}-{i}-1", benefit="dagpenge", date="2019-01-01"))
        documents += [_event("conversation.held", case_id, f"{prefix}-{i}-{n}", kind="jobsamtale",
                             date=f"2019-{(n % 12) + 1:02d}-01") for n in range(2, per_case)]
    return documents


def _event(type_: str, subject: str, id_: str, **data) -> dict:
    return {"specversion": "1.0", "id": id_, "source": "bench/momentum", "type": f"dk.frisag.{type_}",
            "subject": subject, "time": "2019-01-02T08:00:00Z", "data": data}


def raw_produce(kafka: str, n: int) -> float:
    """kafka-python alone, with the relay's producer settings and a message of the same shape."""
    topic = "bench-raw"
    publisher = KafkaPublisher(kafka, topic)
    cases = build_cases(CaseSettings(database_url=None, data_dir=Path(tempfile.mkdtemp(prefix="frisag-bench-"))))
    ingest = Ingest(cases)
    ingest.submit([parse_event(d) for d in case_events("raw", 10, 10)]).result()
    sample = stream_events(cases, 0, 100)
    ingest.close()
    events = (sample * (n // len(sample) + 1))[:n]
    start = time.perf_counter()
    for i in range(0, n, 5000):
        publisher.publish(events[i:i + 5000])
    elapsed = time.perf_counter() - start
    publisher.close()
    cases.close()
    return n / elapsed


def naive_save(database_url: str, n: int) -> float:
    """The eventsourcing application saving one event per transaction, no grouping."""
    cases = build_cases(CaseSettings(database_url=database_url))
    documents = [parse_event(d) for d in case_events("naive", n // 10, 10)]
    start = time.perf_counter()
    for incoming in documents:
        case = cases.get_case(incoming.case_id)
        if case is None:
            case = Case.open(incoming)
        else:
            case.append(incoming, cases.catalog)
        cases.save(case)
    elapsed = time.perf_counter() - start
    cases.close()
    return len(documents) / elapsed


class CaseServer:
    """The case service as docker-compose runs it: the HTTP service and the relay in processes
    of their own, on PostgreSQL and Kafka."""

    def __init__(self, database_url: str, kafka: str, topic: str) -> None:
        self.database_url, self.topic = database_url, topic
        self.port = free_port()
        env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_TOPIC": topic,
               "RUN_RELAY": "false"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "services.case.api:app", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log", "--workers", os.environ.get("BENCH_WORKERS", "1")], env=env)
        self.relay = subprocess.Popen([sys.executable, "-m", "services.case.run_relay"], env=env,
                                      stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def published_everything(self) -> bool:
        with psycopg.connect(self.database_url) as conn:
            stored = conn.execute("SELECT max(notification_id) FROM cases_events").fetchone()[0]
            published = conn.execute("SELECT max(notification_id) FROM cases_tracking WHERE application_name = %s",
                                     (tracking_name(self.topic),)).fetchone()[0]
        return stored is not None and stored == published

    def wait_published(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.published_everything():
            if time.monotonic() > deadline:
                raise TimeoutError("the relay did not catch up")
            time.sleep(0.01)

    def close(self) -> None:
        for process in (self.process, self.relay):
            process.terminate()
            process.wait(timeout=20)


def batch_ingest(database_url: str, kafka: str, n: int, batch_size: int = 1000) -> float:
    server = CaseServer(database_url, kafka, "bench-batch")
    documents = case_events("batch", n // 20, 20)
    bodies = [json.dumps(documents[i:i + batch_size]).encode() for i in range(0, len(documents), batch_size)]
    headers = {"content-type": "application/cloudevents-batch+json", "authorization": AUTHORIZATION}
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=60) as client:
        def post(body: bytes) -> None:
            answer = client.post("/events", content=body, headers=headers)
            assert answer.status_code == 201, answer.text

        start = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(post, bodies))
        server.wait_published()
        elapsed = time.perf_counter() - start
    server.close()
    return len(documents) / elapsed


def single_posts(database_url: str, kafka: str, n: int, clients: int = CLIENTS) -> float:
    server = CaseServer(database_url, kafka, "bench-single")
    per_client = [case_events(f"single{c}", n // clients // 10, 10) for c in range(clients)]
    bodies = [[json.dumps(d).encode() for d in documents] for documents in per_client]
    start = time.perf_counter()
    statuses = asyncio.run(post_all(server.port, "/events", "application/cloudevents+json", bodies, AUTHORIZATION))
    assert set(statuses) == {201}, set(statuses)
    server.wait_published()
    elapsed = time.perf_counter() - start
    server.close()
    return sum(len(b) for b in bodies) / elapsed


def bare_posts(n: int, clients: int = CLIENTS) -> float:
    """Single posts as `single_posts` sends them, to a bare FastAPI endpoint served the same way."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.bench.bare:app", "--port", str(port), "--log-level", "warning",
         "--no-access-log", "--workers", os.environ.get("BENCH_WORKERS", "1")])
    try:
        wait_for_port(port)
        per_client = [case_events(f"bare{c}", n // clients // 10, 10) for c in range(clients)]
        bodies = [[json.dumps(d).encode() for d in documents] for documents in per_client]
        start = time.perf_counter()
        statuses = asyncio.run(post_all(port, "/events", "application/cloudevents+json", bodies, AUTHORIZATION))
        elapsed = time.perf_counter() - start
        assert set(statuses) == {201}, set(statuses)
    finally:
        server.terminate()
        server.wait(timeout=20)
    return sum(len(b) for b in bodies) / elapsed


def main() -> None:
    with connect_admin() as admin, kafka_broker() as kafka, CpuSteal() as steal:
        raw = raw_produce(kafka, BATCH_EVENTS)
        with fresh_database(admin) as url:
            naive = naive_save(url, NAIVE_EVENTS)
        with fresh_database(admin) as url:
            batch = batch_ingest(url, kafka, BATCH_EVENTS)
        with fresh_database(admin) as url:
            single = single_posts(url, kafka, SINGLE_EVENTS)
        bare = bare_posts(SINGLE_EVENTS)
    rows = [
        ("raw kafka-python produce (relay settings)", raw, None,
         "first batch of 5,000 handed to the producer -> the broker acknowledged the last"),
        ("naive eventsourcing save, 1 event/transaction", naive, None,
         "first event read from the store -> last event's transaction committed"),
        ("POST /events batches of 1,000, stored+published", batch, 5000,
         "first POST sent (4 clients) -> the relay recorded the last stored event as published"),
        (f"POST /events single, {CLIENTS} clients, stored+published", single, 1000,
         f"first POST sent ({CLIENTS} clients) -> the relay recorded the last stored event as published"),
    ]
    print(f"\ncase service ingest on PostgreSQL + Kafka protocol ({os.cpu_count()} cores)")
    print(f"{'measure':<55}{'events/s':>10}{'x raw':>8}{'x naive':>9}  target")
    for name, rate, target, clock in rows:
        verdict = "" if target is None else f">= {target:,}: {'met' if rate >= target else 'MISSED'}"
        print(f"{name:<55}{rate:>10,.0f}{rate / raw:>8.2f}{rate / naive:>9.1f}  {verdict}")
        print(f"    clock: {clock}")
    print(f"{f'bare FastAPI endpoint, single, {CLIENTS} clients':<55}{bare:>10,.0f}{bare / raw:>8.2f}{bare / naive:>9.1f}")
    print("    clock: first POST sent -> last answered; the same bodies, route and uvicorn settings, each body\n"
          "    parsed as JSON and nothing else")
    print(f"single posts / bare endpoint: {single / bare:.2f}  >= 0.6: {'met' if single / bare >= 0.6 else 'MISSED'}")
    print(f"cpu steal during the run: {steal.share:.0%}")
