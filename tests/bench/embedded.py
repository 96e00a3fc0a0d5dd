"""What the relay costs in `make run`'s path (SQLite, no broker): the case store's log read as the
consumers read it before the embedded stream (decrypting and pseudonymising every event), against
the relay publishing it to the stream table (that read included) and a consumer reading the table.
`python -m tests.bench embedded [cases]`."""

import sys
import tempfile
import time
from pathlib import Path

from services.case.bootstrap import build_cases, build_relay
from services.case.ingest import Ingest
from services.case.settings import CaseSettings
from services.case.stream_events import stream_events
from shared.events import parse_batch
from shared.population import Population
from shared.stream.connect import open_stream
from tests.bench.steal import CpuSteal

CASES = 3000  # about 31,000 events


def main(cases: int = CASES) -> None:
    with tempfile.TemporaryDirectory() as folder, CpuSteal() as steal:
        settings = CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=Path(folder))
        store = build_cases(settings)
        ingest = Ingest(store)
        documents = [d for case in Population(42).cases(cases) for d in case]
        started = time.perf_counter()
        for i in range(0, len(documents), 1000):
            ingest.submit(parse_batch(documents[i:i + 1000])).result()
        stored = time.perf_counter() - started
        ingest.close()
        events = store.last_position()

        started, after = time.perf_counter(), 0
        while batch := stream_events(store, after, 5000):
            after = batch[-1].position
        log_read = time.perf_counter() - started

        started = time.perf_counter()
        assert build_relay(settings, store).publish_pending() == events
        published = time.perf_counter() - started

        subscription = open_stream(settings).subscribe(None, lambda partition: None)
        started, read = time.perf_counter(), 0
        while read < events:
            read += len(subscription.poll(timeout=0.5, max_records=5000))
        stream_read = time.perf_counter() - started
        store.close()
    print(f"embedded path, {events:,} events (SQLite):")
    print(f"{'measure':<58}{'events/s':>10}")
    for name, seconds in (("ingest, batches of 1,000 (for scale)", stored),
                          ("consumer reading the case store's log (before)", log_read),
                          ("relay: log read + publish to the stream table", published),
                          ("consumer reading the stream table (now)", stream_read)):
        print(f"{name:<58}{events / seconds:>10,.0f}")
    print(f"cpu steal during the run: {steal.share:.0%}")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
