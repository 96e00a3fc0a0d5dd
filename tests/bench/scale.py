"""`make bench-scale` (issue 21): the pipeline at 10,000, 100,000 and 1,000,000 cases
(`BENCH_SCALE_SIZES`), each size on a fresh broker and fresh databases. Per size: the synthetic
population POSTed to the case service in batches (stored, and published by the relay: the topic
the projections read), the raw consume rate of that topic, both projections built from it, a
re-evaluation of every case, the evaluation's latencies, the peak memory of each process and the
size of each database. Then the cost per case at each size beside the 100,000-case run's (the
target: at most 20 % more at 1,000,000), as a table and as `docs/scale.svg`.
"""

import json
import multiprocessing
import os
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from math import log10
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from sqlalchemy import Engine

from services.obligations.projection import ObligationsProjection
from shared.catalog import Catalog
from shared.population import Population
from tests.bench.access import AUTHORIZATION
from tests.bench.ingest import CaseServer
from tests.bench.obligations import (
    CONSUMERS_PER_CORE,
    TOPIC,
    peak_rss,
    raw_consume,
    rebuild,
    reevaluate,
)
from tests.bench.reporting import latencies, reporting_store
from tests.bench.steal import CpuSteal
from tests.infra import connect_admin, fresh_database, kafka_broker

SIZES = [int(size) for size in os.environ.get("BENCH_SCALE_SIZES", "10000,100000,1000000").split(",")]
BATCH_EVENTS = 1000
CLIENTS = 4
CHART = Path(__file__).resolve().parents[2] / "docs" / "scale.svg"
# the costs per case compared across sizes: (figure, its label, seconds per case from the figures)
COSTS = [("ingest", "indlæsning (POST, gemt og publiceret)", lambda f: f["events"] / f["ingest"] / f["cases"]),
         ("obligations", "forpligtelser, genopbygning", lambda f: f["events"] / f["obligations"] / f["cases"]),
         ("reporting", "rapportering, genopbygning", lambda f: f["events"] / f["reporting"] / f["cases"]),
         ("reevaluate", "genberegning efter ændret forsøg", lambda f: f["reevaluate"] / f["cases"])]


def scaled_obligations(engine: Engine) -> ObligationsProjection:
    """The obligations projection in a consumer group of its own: both projections read one
    broker here, and a group the other projection's consumers left rebalances for minutes."""
    return ObligationsProjection(engine, Catalog.load(), group="bench-obligations")


def database_size(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def population_batches(cases: int, folder: Path) -> Path:
    """The population's events as POST bodies of about BATCH_EVENTS events, whole cases each (a
    case's events in order: batches are posted concurrently), one per line of a file: written
    before the clock starts, read while it runs."""
    path, batch = folder / "batches.jsonl", []
    with path.open("wb") as out:
        for documents in Population(seed=7).cases(cases):
            batch += documents
            if len(batch) >= BATCH_EVENTS:
                out.write(orjson.dumps(batch) + b"\n")
                batch = []
        if batch:
            out.write(orjson.dumps(batch) + b"\n")
    return path


def post_batches(url: str, batches: Path) -> None:
    """Every line of `batches` POSTed to the case service at `url`, by CLIENTS clients at once."""
    headers = {"content-type": "application/cloudevents-batch+json", "authorization": AUTHORIZATION}
    lock, failures = threading.Lock(), []

    def client(lines) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while not failures:
                with lock:
                    body = lines.readline()
                if not body:
                    return
                answer = http.post("/events", content=body, headers=headers)
                if answer.status_code != 201:
                    failures.append(f"{answer.status_code} {answer.text[:500]}")

    with batches.open("rb") as lines:
        clients = [threading.Thread(target=client, args=(lines,)) for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        try:
            for thread in clients:
                thread.join()
        except KeyboardInterrupt:
            failures.append("interrupted")  # the clients stop after the batch they are posting
            raise
    assert not failures, failures[0]


def ingest(database_url: str, kafka: str, batches: Path) -> tuple[float, int, int]:
    """Events/s from the first POST to the relay having published the last event stored; the
    events stored; the case service's peak RSS."""
    server = CaseServer(database_url, kafka, TOPIC)
    try:
        start = time.perf_counter()
        post_batches(f"http://127.0.0.1:{server.port}", batches)
        server.wait_published(timeout=600)
        elapsed = time.perf_counter() - start
        with psycopg.connect(database_url) as conn:
            events = conn.execute("SELECT count(*) FROM cases_events").fetchone()[0]
        return events / elapsed, events, peak_rss(server.process.pid)
    finally:
        server.close()


def measure(cases: int) -> dict[str, Any]:
    """Every figure of one size, each printed as it is measured (a run that fails later keeps it)."""
    figures: dict[str, Any] = {"cases": cases}

    def note(**measured: Any) -> None:
        figures.update(measured)
        print(f"{cases:,} cases: {json.dumps(measured)}", flush=True)

    processes = CONSUMERS_PER_CORE * (os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as folder, connect_admin() as admin, kafka_broker() as kafka, \
            CpuSteal() as steal:
        batches = population_batches(cases, Path(folder))
        with fresh_database(admin) as url:
            rate, events, rss = ingest(url, kafka, batches)
            note(ingest=rate, events=events, rss_case=rss, db_case=database_size(url))
        note(raw=raw_consume(kafka, events))
        with fresh_database(admin) as url:
            rate, projection, stop = rebuild(scaled_obligations, url, kafka, events, processes)
            note(obligations=rate, rss_obligations=stop())
            with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
                note(reevaluate=reevaluate(projection, pool)[1])
            note(db_obligations=database_size(url))
            projection.engine.dispose()
        with fresh_database(admin) as url:
            rate, store, stop = rebuild(reporting_store, url, kafka, events, os.cpu_count() or 1)
            note(reporting=rate)
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
            latency = latencies(url, kafka, store)
            note(rss_reporting_consumers=stop(), db_reporting=database_size(url))
            store.engine.dispose()
        note(first_after_start=latency.started[0], first_after_restart=latency.restarted,
             after_change_p95=p95(latency.after_change), repeated_p95=p95(latency.repeated),
             rss_reporting=latency.peak_rss, steal=steal.share)
    return figures


def p95(seconds: list[float]) -> float:
    return sorted(seconds)[int(0.95 * len(seconds)) - 1]


def table(runs: list[dict[str, Any]]) -> str:
    mib = 2**20
    rows = [("cases", lambda f: f"{f['cases']:,}"), ("events", lambda f: f"{f['events']:,}"),
            ("ingest, events/s", lambda f: f"{f['ingest']:,.0f}"),
            ("raw kafka-python consume, events/s", lambda f: f"{f['raw']:,.0f}"),
            ("obligations rebuild, events/s", lambda f: f"{f['obligations']:,.0f}"),
            ("  x raw consume (target >= 0.4)", lambda f: f"{f['obligations'] / f['raw']:.2f}"),
            ("reporting store, events/s", lambda f: f"{f['reporting']:,.0f}"),
            ("  x raw consume (target >= 0.4)", lambda f: f"{f['reporting'] / f['raw']:.2f}"),
            ("re-evaluate every case, s", lambda f: f"{f['reevaluate']:.1f}"),
            ("evaluation, first after start, s", lambda f: f"{f['first_after_start']:.2f}"),
            ("evaluation, first after restart, s", lambda f: f"{f['first_after_restart']:.2f}"),
            ("evaluation after a change, p95 ms", lambda f: f"{f['after_change_p95'] * 1000:.0f}"),
            ("evaluation repeated, p95 ms", lambda f: f"{f['repeated_p95'] * 1000:.0f}"),
            ("peak RSS case service, MiB", lambda f: f"{f['rss_case'] / mib:,.0f}"),
            ("peak RSS obligations consumer, MiB", lambda f: f"{f['rss_obligations'] / mib:,.0f}"),
            ("peak RSS reporting consumer, MiB", lambda f: f"{f['rss_reporting_consumers'] / mib:,.0f}"),
            ("peak RSS reporting service, MiB", lambda f: f"{f['rss_reporting'] / mib:,.0f}"),
            ("database: case store, MiB", lambda f: f"{f['db_case'] / mib:,.0f}"),
            ("database: obligations, MiB", lambda f: f"{f['db_obligations'] / mib:,.0f}"),
            ("database: reporting, MiB", lambda f: f"{f['db_reporting'] / mib:,.0f}"),
            ("cpu steal", lambda f: f"{f['steal']:.0%}")]
    base = next((f for f in runs if f["cases"] == 100_000), None)
    if base is not None:
        rows += [(f"cost per case x 100,000's: {name}", lambda f, cost=cost: f"{cost(f) / cost(base):.2f}")
                 for name, _, cost in COSTS]
    lines = [f"{'measure':<48}" + "".join(f"{f['cases']:>14,}" for f in runs)]
    lines += [f"{label:<48}" + "".join(f"{value(f):>14}" for f in runs) for label, value in rows]
    return "\n".join(lines)


def chart(runs: list[dict[str, Any]]) -> str:
    """The cost per case of each measure at each size, as a share of the 100,000-case run's, on
    a logarithmic axis of cases; the target (at most 1.2) dashed. Danish, for Danish readers."""
    base = next(f for f in runs if f["cases"] == 100_000)
    width, height, left, right, top, bottom = 640, 360, 70, 230, 40, 50
    sizes = sorted(f["cases"] for f in runs)
    ratios = [[cost(f) / cost(base) for f in sorted(runs, key=lambda f: f["cases"])] for _, _, cost in COSTS]
    high = max(1.5, max(max(r) for r in ratios) * 1.1)

    def x(cases: int) -> float:
        span = log10(sizes[-1]) - log10(sizes[0]) or 1
        return left + (log10(cases) - log10(sizes[0])) / span * (width - left - right)

    def y(ratio: float) -> float:
        return top + (1 - ratio / high) * (height - top - bottom)

    colours = ["#1b6ca8", "#c0392b", "#2e8b57", "#8e44ad"]
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="12"><rect width="100%" height="100%" fill="white"/>'),
             f'<text x="{left}" y="22" font-size="14">Omkostning pr. sag i forhold til 100.000 sager</text>',
             (f'<line x1="{left}" y1="{y(1.2):.1f}" x2="{width - right}" y2="{y(1.2):.1f}" stroke="#999" '
             f'stroke-dasharray="4 4"/><text x="{width - right + 4}" y="{y(1.2) + 4:.1f}" fill="#666">mål: højst 1,2</text>')]
    for tick in (0.5, 1.0, 1.5, 2.0, 3.0):
        if tick <= high:
            parts.append(f'<text x="{left - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.1f}'.replace(".", ",")
                         + '</text>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>'
                 f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>')
    for cases in sizes:
        parts.append(f'<text x="{x(cases):.1f}" y="{height - bottom + 18}" text-anchor="middle">'
                     f'{cases:,}'.replace(",", ".") + '</text>')
    parts.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 10}" text-anchor="middle">sager</text>')
    for i, ((_, label, _), ratio) in enumerate(zip(COSTS, ratios)):
        points = " ".join(f"{x(c):.1f},{y(r):.1f}" for c, r in zip(sizes, ratio))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colours[i]}" stroke-width="2"/>')
        parts += [f'<circle cx="{x(c):.1f}" cy="{y(r):.1f}" r="3" fill="{colours[i]}"/>' for c, r in zip(sizes, ratio)]
        parts.append(f'<text x="{width - right + 4}" y="{top + 20 + 18 * i}" fill="{colours[i]}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    runs = []
    for cases in SIZES:
        started = time.perf_counter()
        runs.append(measure(cases))
        print(f"{cases:,} cases measured in {time.perf_counter() - started:.0f} s: {json.dumps(runs[-1])}", flush=True)
    print(f"\nscale: the pipeline at {', '.join(f'{c:,}' for c in SIZES)} cases ({os.cpu_count()} cores)")
    print(table(runs))
    if any(f["cases"] == 100_000 for f in runs) and len(runs) > 1:
        CHART.write_text(chart(runs))
        print(f"chart: {CHART}")


if __name__ == "__main__":
    main()
