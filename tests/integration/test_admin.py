"""The admin command line (`python -m services.admin`) against PostgreSQL and the real broker:
the catalog check, consumer positions and lag, an offline rebuild, and the demo loader."""

import os
import pty
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest
from kafka import KafkaConsumer
from sqlalchemy import create_engine, delete, insert

from services import admin
from services.case.api import create_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.projection import ObligationsProjection
from services.reporting.store import ReportingStore
from shared import cpr
from shared.catalog import CATALOG_DIR, Catalog
from shared.consumer import Consumer
from shared.events import StreamEvent
from shared.population import Population
from shared.stream import Delivery
from shared.settings import ServiceSettings
from shared.stream.connect import open_stream
from shared.stream.kafka import KafkaPublisher, ensure_topic
from tests.infra import wait_until

PROJECTIONS = {"obligations": ObligationsProjection, "reporting": ReportingStore}
PARTITIONS = 3


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = admin.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def on_a_terminal(*argv: str) -> tuple[int, str, str]:
    """The admin command run with its stderr a terminal (a pseudo-terminal: which turns "\\n" into
    "\\r\\n"); its exit code, stdout and what it wrote on the terminal."""
    terminal, child_end = pty.openpty()
    try:
        child = subprocess.Popen([sys.executable, "-m", "services.admin", *argv], stdout=subprocess.PIPE,
                                 stderr=child_end)
        os.close(child_end)
        written = b""
        while True:
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # EIO: the child is gone and with it the terminal's other end
                break
            if not chunk:
                break
            written += chunk
        out, _ = child.communicate(timeout=120)
    finally:
        os.close(terminal)
    return child.returncode, out.decode(), written.decode()


def publish_population(kafka: str, topic: str, cases: int) -> int:
    """A synthetic population as the relay would publish it (in order per case, keyed by case);
    returns the event count."""
    ensure_topic(kafka, topic, PARTITIONS)
    events, position = [], 0
    for documents in Population(seed=3).cases(cases):
        for sequence, d in enumerate(documents, start=1):
            data = dict(d["data"])
            if "cpr" in data:
                data["citizen"] = cpr.pseudonym(data.pop("cpr"), b"test")
            position += 1
            events.append(StreamEvent(d["id"], d["source"], d["type"], d["subject"], d["time"], data, sequence, position))
    publisher = KafkaPublisher(kafka, topic)
    for e in events:
        # one record per batch: the test broker (tansu) answers a ListOffsets for the end with
        # the last batch's first offset + 1, Kafka with the offset after the last record
        publisher.publish([e])
    publisher.close()
    return len(events)


@pytest.fixture
def kafka_env(monkeypatch, database_url, kafka, topic, tmp_path) -> dict[str, str]:
    """The environment of a production-shaped deployment, for the command line in and out of process."""
    env = {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_TOPIC": topic,
           "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS), "KAFKA_SESSION_TIMEOUT_MS": "6000", "DATA_DIR": str(tmp_path)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def pg_engine(database_url: str):
    return create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))


def test_the_help_lists_every_subcommand():
    answer = subprocess.run([sys.executable, "-m", "services.admin", "--help"], capture_output=True, text=True, check=True)
    for command in ("check-catalog", "positions", "rebuild", "failed", "load-demo", "token"):
        assert re.search(rf"^\s+{command}\s", answer.stdout, re.MULTILINE), answer.stdout


def test_check_catalog_accepts_the_catalog_and_names_a_broken_file(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("CATALOG_DIR", raising=False)
    code, out, _ = run(capsys, "check-catalog")
    catalog = Catalog.load()
    assert code == 0
    assert f"{len(catalog.rules)} rules, {len(catalog.trials)} trials" in out
    assert "T11" not in out.split("no end date:")[1]  # T11 has an end date; most trials have none
    assert "T1," in out

    broken = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, broken, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    trial = broken / "trials" / "T11.yaml"
    trial.write_text(trial.read_text().replace("target_group: ", "target_group: everybody  # ", 1))
    code, out, err = run(capsys, "check-catalog", str(broken))
    assert code == 1 and out == ""
    assert str(trial) in err and "target_group" in err

    trial.write_text(trial.read_text().replace("target_group: everybody  # ", "target_group: ", 1)
                     .replace("rule: LAS-74c", "rule: LAS-74x", 1))
    code, _, err = run(capsys, "check-catalog", str(broken))
    assert code == 1 and str(trial) in err and "unknown rule LAS-74x" in err


def test_positions_show_the_lag_per_partition(capsys, kafka_env, database_url, kafka, topic):
    published = publish_population(kafka, topic, 40)
    projection = ObligationsProjection(pg_engine(database_url), Catalog.load(), group="obligations")
    stream = open_stream(ServiceSettings(kafka_bootstrap_servers=kafka, kafka_topic=topic,
                                            kafka_topic_partitions=PARTITIONS, kafka_session_timeout_ms=6000))
    subscription = stream.subscribe("obligations", projection.resume_from)
    try:
        deadline, deliveries = time.monotonic() + 60, []
        while not deliveries and time.monotonic() < deadline:
            deliveries = subscription.poll(timeout=0.5, max_records=100)
    finally:
        subscription.close()
    projection.store(deliveries)
    assert 0 < len(deliveries) < published

    code, out, _ = run(capsys, "positions", "obligations")
    assert code == 0
    assert f"lag: {published - len(deliveries)} events" in out
    rows = [line.split() for line in out.splitlines() if re.match(r"^\s+\d+\s", line)]
    assert [int(row[0]) for row in rows] == list(range(PARTITIONS))
    assert sum(int(row[2]) for row in rows) == published - len(deliveries)
    positions = projection.stored_positions()
    assert [row[1] for row in rows] == [str(positions.get(p, "-")) for p in range(PARTITIONS)]
    projection.engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("service", PROJECTIONS)
def test_a_rebuild_makes_what_the_normal_consumer_made(service, kafka_env, database_url, kafka, topic):
    published = publish_population(kafka, topic, 60)
    projection = PROJECTIONS[service](pg_engine(database_url), Catalog.load(), group=service)
    stream = open_stream(ServiceSettings(kafka_bootstrap_servers=kafka, kafka_topic=topic,
                                            kafka_topic_partitions=PARTITIONS, kafka_session_timeout_ms=6000))
    stop = threading.Event()
    thread = threading.Thread(target=Consumer(projection, stream, service).run, args=(stop,))
    thread.start()
    try:
        assert wait_until(lambda: sum(projection.resume_from(p) or 0 for p in range(PARTITIONS)) == published
                          and projection.counts()["stale"] == 0)
    finally:
        stop.set()
        thread.join()
    built = projection.snapshot()
    assert len(built) > published  # something was derived

    # damage it: a derived table emptied, an event that was never published
    with projection.engine.begin() as conn:
        conn.execute(delete(projection.derivation.tables[0]))
        conn.execute(insert(projection.case_events).values(case_id="stray", sequence=1, name="case.opened", data={}))
    assert projection.snapshot() != built

    # a member the broker still counts in the group, that will not join a rebalance (a replica
    # left running, hung): a rebuild must not wait for it (a group rebalance would, 300 s)
    lingering = KafkaConsumer(bootstrap_servers=kafka, group_id=service, enable_auto_commit=False)
    lingering.subscribe([topic])
    assert wait_until(lambda: lingering.poll(timeout_ms=200) is not None and lingering.assignment())
    try:
        # as an operator runs it: its own process, worker processes deriving
        answer = subprocess.run([sys.executable, "-m", "services.admin", "rebuild", service],
                                env={**os.environ, **kafka_env, "REFOLD_WORKERS": "2"},
                                capture_output=True, text=True, timeout=120)
    finally:
        lingering.close()
    assert answer.returncode == 0, answer.stderr
    assert f"from {published} events" in answer.stdout and "events/s" in answer.stdout
    assert projection.snapshot() == built
    assert sum(projection.resume_from(p) or 0 for p in range(PARTITIONS)) == published
    projection.engine.dispose()


def test_load_demo_stores_the_population_and_the_embedded_stream_is_rebuilt(capsys, monkeypatch, serve, database_url,
                                                                           tmp_path, issuer):
    # embedded stream: no broker, the case service's relay appends to the stream table (here on PostgreSQL)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("REFOLD_WORKERS", "0")  # derived in this process (the Kafka test uses workers)
    expected = sum(len(documents) for documents in Population(admin.DEMO_SEED).cases(150))
    assert expected > admin.BATCH_EVENTS  # more than one batch
    settings = CaseSettings(database_url=database_url, kafka_bootstrap_servers=None, data_dir=tmp_path)
    with serve(create_app(lambda: case_bootstrap(settings))) as client:
        code, out, err = run(capsys, "load-demo", "--cases", "150", "--url", str(client.base_url),
                             "--token", client.headers["authorization"].split()[1])
        assert code == 0 and out.startswith(f"{expected} events stored")
        assert "\r" not in err and "\x1b" not in err  # not a terminal: no bar drawn (plain lines every 10 s)
        assert len(client.get("/cases/syn-0").json()["events"]) == len(Population(admin.DEMO_SEED).case("syn-0"))
        code, out, terminal = on_a_terminal("load-demo", "--cases", "150", "--url", str(client.base_url),
                                            "--token", client.headers["authorization"].split()[1])
        assert code == 0 and out.startswith(f"0 events stored (150 cases; {expected} were stored before)")
        assert re.search(r"\r\[#{20}\] 100% 150/150 cases, [\d,]+ cases/s, ETA 0:00\x1b\[K\r\n$", terminal), terminal
        stream = open_stream(ServiceSettings(database_url=database_url, kafka_bootstrap_servers=None))
        assert wait_until(lambda: sum(stream.lag({}).values()) == expected, timeout=60)  # the relay published it all

    code, out, _ = run(capsys, "positions", "reporting")
    assert code == 0 and f"lag: {expected} events" in out and "stream frisag.case-events" in out
    code, out, err = run(capsys, "rebuild", "reporting")
    assert code == 0 and f"rebuilt 150 cases from {expected} events" in out
    assert "\r" not in err and "\x1b" not in err
    code, out, terminal = on_a_terminal("rebuild", "reporting")
    assert code == 0 and f"rebuilt 150 cases from {expected} events" in out
    assert re.search(rf"\r\[#{{20}}\] 100% {expected}/{expected} events, [\d,]+ events/s, ETA 0:00\x1b\[K\r\n$",
                     terminal), terminal
    code, out, _ = run(capsys, "positions", "reporting")
    assert code == 0 and "lag: 0 events" in out


def test_failed_lists_the_cases_the_fold_failed_for_and_retry_derives_them_again(capsys, monkeypatch, tmp_path):
    """Embedded: a catalog value the fold cannot use fails the ledighedsydelse case; the command
    lists it, a retry under the same catalog fails it again, and after the fix derives it."""
    for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, catalog_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    las = catalog_dir / "rules" / "LAS-74c.yaml"
    good_rule = las.read_text()
    las.write_text(good_rule.replace("{value: 12,", "{value: twelve,"))
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CATALOG_DIR", str(catalog_dir))
    engine = create_engine(f"sqlite:///{tmp_path / 'obligations.sqlite'}")
    projection = ObligationsProjection(engine, Catalog.load(catalog_dir))
    events = [("poison", "case.opened", {"date": "2019-01-01", "municipality": "751", "citizen": "p"}),
              ("poison", "benefit.started", {"date": "2019-01-01", "benefit": "ledighedsydelse"}),
              ("good", "case.opened", {"date": "2019-01-01", "municipality": "751", "citizen": "q"}),
              ("good", "benefit.started", {"date": "2019-01-01", "benefit": "dagpenge"})]
    projection.store([Delivery(0, i, StreamEvent(f"e{i}", "s", f"dk.frisag.{name}", case_id, None, data, i % 2 + 1, i))
                      for i, (case_id, name, data) in enumerate(events)])
    engine.dispose()

    code, out, _ = run(capsys, "failed", "obligations")
    assert code == 0 and "1 failed case" in out
    [line] = [line for line in out.splitlines() if "poison" in line]
    assert "TypeError" in line and "751" in line and " 2 " in line  # its events up to sequence 2
    code, out, _ = run(capsys, "failed", "obligations", "--retry")
    assert code == 0 and "derived 1 case again" in out and "1 failed case" in out

    las.write_text(good_rule)
    code, out, _ = run(capsys, "failed", "obligations", "--retry")
    assert code == 0 and "derived 1 case again" in out and "0 failed cases" in out
