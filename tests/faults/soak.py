"""The soak (`make soak`, `python -m tests.faults.soak`): Frisag as separate processes on
PostgreSQL and the broker (tests/faults/harness.py). First the single-POST capacity is measured
(clients posting as fast as they are answered), then ingest runs steadily at half of it for
SOAK_SECONDS (default 600) with readers on the worklist and the evaluation. With
SOAK_PRELOAD_CASES, that many cases of the synthetic population (shared/population.py, as `make
bench-scale` posts them) are stored first through the case service and projected by both services:
the soak at a national store's size.

The data has a steady shape, as a jobcenter's: each client keeps a caseload of open cases, gives
each its next event in turn (a week apart, the last about today), and closes a case after 4 to 40
events, opening a new one in its place. So what a process does per event, and what it keeps per
open case, stays the same over the run; only the number of closed cases grows (the reporting
service keeps every case's facts in memory as columns, a few KiB each: the evaluation counts them
all). Recent cases, as a caseload's are: deriving a case folds its rules from its opening to 400
days past today, so a case opened years ago and still open costs years of obligations per event.
The evaluation read is that of T24, whose municipalities (751, 461) are among the soak's and
whose trial period runs to today.

Prints the lag over time (the relay's and each projection's), p99 latencies, and each process's
memory from the end of the warm-up (a quarter of the run: imports done, caches and pools filled,
the caseload open) to the end. Fails when ingest did not keep 90 % of the asked rate, when the lag
does not stay bounded, when anything acknowledged is lost or applied twice, or when a process's
memory moved by more than 10 % between the two."""

import os
import signal
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import psycopg

from tests.bench.access import AUTHORIZATION
from tests.bench.scale import population_batches, post_batches
from tests.faults.harness import PROJECTIONS, Broker, Clients, System, tally
from tests.infra import connect_admin, fresh_database

SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
PRELOAD_CASES = int(os.environ.get("SOAK_PRELOAD_CASES", "0"))
PRELOAD_WAIT = 3600  # seconds the projections may take to hold the preloaded cases after the last POST
EVALUATION = "/trials/T24/evaluation"
CAPACITY_SECONDS = 20
SAMPLE_EVERY = 10  # seconds between lag lines
WARM_UP = SOAK_SECONDS // 4  # memory is compared from here: imports done, caches filled, the caseload open
MEMORY_TOLERANCE = 0.10
CLIENTS = 32  # as many as measure the capacity: each waits between posts, so the rate is kept
RATE_KEPT = 0.9  # of the asked rate, at least, acknowledged on average
EVENTS_PER_CASE = 5  # while measuring the capacity: small whole cases
CASELOAD = 10  # open cases per client in the soak
LONGEST = 40  # events of the longest case in the soak (the shortest has 4)


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else float("nan")


def metric(url: str, name: str) -> int:
    """The sum of a metric's samples in a service's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and line[len(name)] in " {"))


class Reader:
    """Asks one question again and again (two a second), recording each answer's latency."""

    def __init__(self, url: str, path: str, params: dict[str, str]) -> None:
        self.url, self.path, self.params = url, path, params
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, headers={"authorization": AUTHORIZATION}, timeout=30) as http:
            while not self._stop.wait(0.5):
                started = time.perf_counter()
                try:
                    answer = http.get(self.path, params=self.params)
                except httpx.HTTPError as exc:  # a question unanswered in 30 s is a failure, not the reader's end
                    self.failures.append(f"{self.path}: {exc!r}")
                    continue
                self.latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    self.failures.append(f"{self.path}: {answer.status_code} {answer.text[:200]}")

    def start(self) -> "Reader":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def preload(system: System, cases: int) -> None:
    """The population's first `cases` cases POSTed in batches; once the relay has published every
    event stored and both projections hold every case, without lag, the statistics gathered and
    the first evaluation answered."""
    with tempfile.TemporaryDirectory() as folder:
        batches = population_batches(cases, Path(folder))
        print(f"preloading {cases:,} cases of the synthetic population", flush=True)
        started = time.monotonic()
        post_batches(system.url("case"), batches)
    posted = time.monotonic()
    events = metric(system.url("case"), "frisag_events_stored_total")
    print(f"posted {events:,} events in {posted - started:,.0f} s ({events / (posted - started):,.0f} events/s)", flush=True)
    while True:
        held = {name: metric(system.url(name), "frisag_projection_cases") for name in PROJECTIONS}
        behind = lags(system)
        if all(n == cases for n in held.values()) and not any(behind.values()):
            break
        if time.monotonic() - posted > PRELOAD_WAIT:
            raise TimeoutError(f"the preloaded cases not projected {PRELOAD_WAIT} s after the last POST: "
                               f"cases {held}, lag {behind}")
        print(f"  {time.monotonic() - started:>6.0f} s: cases {held}, lag {behind}", flush=True)
        time.sleep(30)
    print(f"preloaded: {events:,} events of {cases:,} cases stored, published and projected in "
          f"{time.monotonic() - started:,.0f} s", flush=True)
    # PostgreSQL's advice after a bulk load, which autovacuum would follow within a minute (the
    # test server runs without it): without statistics, reading one case took a scan
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    # the reporting service reads every case's facts for its first evaluation after a start (minutes
    # at a million cases: README, Scale); asked here, so that the soak measures the steady state.
    # Past REQUEST_TIMEOUT_SECONDS it answers 503 with Retry-After and reads on: asked again then
    asked = time.monotonic()
    with httpx.Client(base_url=system.url("reporting"), headers={"authorization": AUTHORIZATION}, timeout=60) as http:
        while (answer := http.get(EVALUATION)).status_code == 503 and time.monotonic() - asked < PRELOAD_WAIT:
            time.sleep(float(answer.headers.get("retry-after", "5")))
    answer.raise_for_status()
    print(f"first evaluation after the preload (every case's facts read): {time.monotonic() - asked:,.1f} s", flush=True)


def capacity(system: System, token: str) -> float:
    """Acknowledged single posts per second, clients posting as fast as they are answered."""
    clients = Clients(system.url("case"), token, "capacity", clients=32, cases_per_client=500,
                      events_per_case=EVENTS_PER_CASE, rate=1e9).start()
    time.sleep(3)  # connections opened, the first group commits done
    start, first = time.monotonic(), len(clients.acknowledged)
    time.sleep(CAPACITY_SECONDS)
    rate = (len(clients.acknowledged) - first) / (time.monotonic() - start)
    clients.stop()
    return rate


def lags(system: System) -> dict[str, int]:
    return {"relay": metric(system.url("case"), "frisag_relay_lag"),
            **{name: metric(system.url(name), "frisag_consumer_lag") for name in PROJECTIONS}}


def soak(system: System, token: str) -> list[str]:
    problems = []
    measured = capacity(system, token)
    rate = measured / 2
    # enough cases for the whole run: each has (4 + LONGEST) / 2 events on average
    cases = int(rate * SOAK_SECONDS / ((4 + LONGEST) / 2) / CLIENTS) + CASELOAD + 1
    print(f"single-POST capacity: {measured:,.0f} events/s; soaking at {rate:,.0f} events/s for {SOAK_SECONDS} s "
          f"({CLIENTS} clients with {CASELOAD} open cases each, closed after 4-{LONGEST} events and replaced; "
          "worklist and evaluation read twice a second each)", flush=True)
    clients = Clients(system.url("case"), token, "soak", clients=CLIENTS, cases_per_client=cases,
                      events_per_case=LONGEST, rate=rate, open_cases=CASELOAD,
                      first_day=date.today() - timedelta(weeks=LONGEST)).start()
    readers = {"worklist": Reader(system.url("obligations"), "/obligations", {"municipality": "851", "limit": "100"}),
               "evaluation": Reader(system.url("reporting"), EVALUATION, {})}
    for reader in readers.values():
        reader.start()
    started = time.monotonic()
    memory_start: dict[str, int] = {}
    history: list[dict[str, int]] = []
    print(f"{'t (s)':>6} {'acknowledged':>12} {'relay lag':>10} {'obligations lag':>16} {'reporting lag':>14}  "
          f"RSS MiB ({', '.join(system.services)})", flush=True)
    while (elapsed := time.monotonic() - started) < SOAK_SECONDS:
        time.sleep(min(SAMPLE_EVERY, max(0.0, SOAK_SECONDS - elapsed)))
        elapsed = time.monotonic() - started
        if not memory_start and elapsed >= WARM_UP:
            memory_start = {name: s.rss_kib() for name, s in system.services.items()}
            cases_start = metric(system.url("reporting"), "frisag_projection_cases")
        now = lags(system)
        history.append(now)
        print(f"{elapsed:>6.0f} {len(clients.acknowledged):>12,} {now['relay']:>10,} {now['obligations']:>16,} "
              f"{now['reporting']:>14,}  {' '.join(f'{s.rss_kib() / 1024:.0f}' for s in system.services.values())}",
              flush=True)
    memory_end = {name: s.rss_kib() for name, s in system.services.items()}
    cases_end = metric(system.url("reporting"), "frisag_projection_cases")
    kept = len(clients.acknowledged) / (time.monotonic() - started)
    clients.stop()
    for reader in readers.values():
        reader.stop()
        problems += reader.failures[:3]

    print(f"ingested {kept:,.0f} events/s on average (asked {rate:,.0f})")
    if kept < RATE_KEPT * rate:
        problems.append(f"ingest kept {kept:,.0f} events/s, under {RATE_KEPT:.0%} of {rate:,.0f}")

    # bounded: over the second half no lag above what ten seconds of ingest make
    bound = max(100, int(rate * 10))
    worst = {name: max(h[name] for h in history[len(history) // 2:]) for name in history[0]}
    print(f"largest lag in the second half: {worst} (bound {bound:,})")
    problems += [f"{name} lag {lag} above {bound}" for name, lag in worst.items() if lag > bound]

    print(f"p99 latency, ms: POST /events {p99(clients.latencies):.0f}, worklist {p99(readers['worklist'].latencies):.0f}, "
          f"evaluation {p99(readers['evaluation'].latencies):.0f} "
          f"({len(clients.latencies):,} / {len(readers['worklist'].latencies):,} / "
          f"{len(readers['evaluation'].latencies):,} requests)")
    print(f"memory from the end of the warm-up ({WARM_UP} s) to the end; cases in the projections "
          f"{cases_start:,} then {cases_end:,} (the caseload open throughout, the others closed)")
    print(f"{'process':<12} {'RSS after warm-up':>18} {'RSS at end':>11} {'change':>7}")
    for name in system.services:
        change = memory_end[name] / memory_start[name] - 1
        print(f"{name:<12} {memory_start[name] / 1024:>15.0f} MiB {memory_end[name] / 1024:>7.0f} MiB {change:>7.1%}")
        if abs(change) > MEMORY_TOLERANCE:
            problems.append(f"{name}: memory moved {change:.1%}")

    result = tally("soak", system, clients)
    print(result.line())
    return problems + result.problems


def main() -> int:
    # a shell starts a job in the background with Ctrl-C ignored: restored, so `kill -INT` stops
    # an hour-long run cleanly (services stopped, database dropped)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    token = AUTHORIZATION.removeprefix("Bearer ")
    with connect_admin() as admin, fresh_database(admin) as database_url:
        broker = Broker(Path(tempfile.mkdtemp(prefix="frisag-soak-")))
        broker.start()
        system = System(database_url, broker, token, broker.log.parent)
        try:
            system.start()
            if PRELOAD_CASES:
                preload(system, PRELOAD_CASES)
            problems = soak(system, token)
        finally:
            system.close()
            broker.stop()
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
