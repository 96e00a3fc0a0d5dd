"""Exactly-once effect, in both modes: against PostgreSQL and the real broker, an obligations or
reporting consumer killed mid-batch and restarted leaves the same projection as a rebuild from
scratch; embedded (SQLite, the relay publishing to the stream table), so does a relay or a
consumer killed (kill -9) and restarted."""

import os
import signal
import subprocess
import sys
import threading

import pytest
from sqlalchemy import create_engine, func, select

from services.case.bootstrap import build_cases, build_relay
from services.case.ingest import Ingest
from services.case.settings import CaseSettings
from services.obligations.projection import ObligationsProjection
from services.reporting.store import ReportingStore
from shared.catalog import Catalog
from shared.consumer import Consumer
from shared.events import parse_batch
from shared.projection import store_tables
from shared.settings import ServiceSettings
from shared.stream.connect import open_stream
from tests.events import benefit_started, event, opened
from tests.infra import wait_until

pytestmark = pytest.mark.slow


def history(cases: int) -> list[dict]:
    documents = []
    for i in range(cases):
        c = f"case-{i}"
        municipality = ("851", "751", "219", "820")[i % 4]
        documents += [opened(c, municipality=municipality, date="2019-01-01"),
                      benefit_started(c, benefit=("ledighedsydelse", "dagpenge", "sygedagpenge")[i % 3], date="2019-01-01"),
                      event("conversation.held", c, kind="jobsamtale", date="2019-02-01"),
                      event("case.assigned", c, caseworker=f"cw-{i % 5}", date="2019-02-01"),
                      event("conversation.held", c, kind="opfoelgningssamtale", date="2019-03-01"),
                      event("case.moved", c, municipality="849", date="2019-06-01") if i % 7 == 0 else
                      event("plan.updated", c, date="2019-06-01")]
    return documents


PROJECTIONS = {"obligations": ObligationsProjection, "reporting": ReportingStore}


def consumed(engine, prefix: str, group: str) -> int:
    positions = store_tables(prefix)[1]
    with engine.connect() as conn:
        return conn.execute(select(func.coalesce(func.sum(positions.c.next_offset), 0))
                            .where(positions.c.consumer_group == group)).scalar()


@pytest.mark.parametrize("service", PROJECTIONS)
def test_a_consumer_killed_mid_batch_leaves_what_a_rebuild_makes(service, database_url, pg_admin, kafka, topic, tmp_path):
    settings = CaseSettings(database_url=database_url, kafka_bootstrap_servers=kafka, kafka_topic=topic,
                            kafka_topic_partitions=3, data_dir=tmp_path)
    store = build_cases(settings)
    ingest = Ingest(store)
    documents = history(400)
    ingest.submit(parse_batch(documents)).result()
    ingest.close()
    relay = build_relay(settings, store)
    assert relay.publish_pending() == len(documents)
    relay.close()

    env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_TOPIC": topic,
           "KAFKA_TOPIC_PARTITIONS": "3", "KAFKA_SESSION_TIMEOUT_MS": "6000", "CONSUMER_BATCH_SIZE": "50"}
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    projection = PROJECTIONS[service](engine, Catalog.load())  # creates the tables
    consumer = subprocess.Popen([sys.executable, "-m", "services.run_consumer", service], env=env)
    try:
        assert wait_until(lambda: consumed(engine, service, service) > 0)
    finally:
        consumer.send_signal(signal.SIGKILL)
        consumer.wait()
    assert consumed(engine, service, service) < len(documents), "killed after the end: the test proves nothing"

    consumer = subprocess.Popen([sys.executable, "-m", "services.run_consumer", service], env=env)
    try:
        assert wait_until(lambda: consumed(engine, service, service) == len(documents))
        assert wait_until(lambda: projection.counts()["stale"] == 0)
    finally:
        consumer.terminate()
        consumer.wait(timeout=30)

    # a rebuild from scratch: a new database, a new consumer group, the whole topic again
    with pg_admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database_url.rsplit("/", 1)[1]}_rebuild"')
    rebuild_engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://") + "_rebuild")
    rebuild = PROJECTIONS[service](rebuild_engine, Catalog.load(), group="rebuild")
    stream = open_stream(ServiceSettings(kafka_bootstrap_servers=kafka, kafka_topic=topic, kafka_topic_partitions=3,
                                            kafka_session_timeout_ms=6000))
    stop = threading.Event()
    thread = threading.Thread(target=Consumer(rebuild, stream, "rebuild").run, args=(stop,))
    thread.start()
    try:
        assert wait_until(lambda: consumed(rebuild_engine, service, "rebuild") == len(documents) and rebuild.counts()["stale"] == 0)
    finally:
        stop.set()
        thread.join()
    assert projection.snapshot() == rebuild.snapshot()
    assert len(projection.snapshot()) > len(documents)  # something was derived
    store.close()
    engine.dispose()
    rebuild_engine.dispose()
    with pg_admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{database_url.rsplit("/", 1)[1]}_rebuild" WITH (FORCE)')


def stream_length(settings: ServiceSettings) -> int:
    return sum(open_stream(settings).lag({}).values())


@pytest.mark.parametrize("killed, service", [("relay", "obligations"), ("consumer", "obligations"),
                                             ("consumer", "reporting")])
def test_embedded_a_relay_or_consumer_killed_and_restarted_leaves_what_a_rebuild_makes(killed, service, tmp_path):
    """`make run`'s path: SQLite, the relay publishing to the embedded stream, no broker."""
    settings = CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path)
    store = build_cases(settings)
    ingest = Ingest(store)
    documents = history(400)
    ingest.submit(parse_batch(documents)).result()
    ingest.close()
    store.close()

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env |= {"DATA_DIR": str(tmp_path), "RELAY_BATCH_SIZE": "50", "CONSUMER_BATCH_SIZE": "50"}
    stream_settings = ServiceSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path)
    engine = create_engine(f"sqlite:///{tmp_path / f'{service}.sqlite'}")
    projection = PROJECTIONS[service](engine, Catalog.load())  # creates the tables

    def start(name: str) -> subprocess.Popen:
        command = ["services.case.run_relay"] if name == "relay" else ["services.run_consumer", service]
        return subprocess.Popen([sys.executable, "-m", *command], env=env)

    relay, consumer = start("relay"), start("consumer")
    processes = {"relay": relay, "consumer": consumer}
    try:
        if killed == "relay":
            assert wait_until(lambda: stream_length(stream_settings) > 0, timeout=60)
        else:
            assert wait_until(lambda: consumed(engine, service, service) > 0, timeout=60)
        processes[killed].send_signal(signal.SIGKILL)
        processes[killed].wait()
        done = stream_length(stream_settings) if killed == "relay" else consumed(engine, service, service)
        assert done < len(documents), "killed after the end: the test proves nothing"
        processes[killed] = start(killed)
        # every event on the stream consumed (a relay killed between publish and record publishes
        # that batch again: the stream may hold more messages than events were stored)
        assert wait_until(lambda: stream_length(stream_settings) >= len(documents)
                          and consumed(engine, service, service) == stream_length(stream_settings)
                          and projection.counts()["stale"] == 0, timeout=120)
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(timeout=30)

    # a rebuild from scratch: a new database, the whole stream again
    rebuild_engine = create_engine(f"sqlite:///{tmp_path / 'rebuild.sqlite'}")
    rebuild = PROJECTIONS[service](rebuild_engine, Catalog.load(), group="rebuild")
    stop = threading.Event()
    thread = threading.Thread(target=Consumer(rebuild, open_stream(stream_settings), "rebuild").run, args=(stop,))
    thread.start()
    try:
        assert wait_until(lambda: consumed(rebuild_engine, service, "rebuild") == stream_length(stream_settings)
                          and rebuild.counts()["stale"] == 0)
    finally:
        stop.set()
        thread.join()
    assert projection.snapshot() == rebuild.snapshot()
    assert len(projection.snapshot()) > len(documents)  # something was derived
    engine.dispose()
    rebuild_engine.dispose()
