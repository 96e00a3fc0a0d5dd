"""Scale-out against PostgreSQL and the real broker: two obligations consumer processes in one
group share a topic's partitions; when one is killed the other takes over its partitions, and
the projection is exactly what one consumer alone would have made."""

import os
import re
import signal
import subprocess
import sys
import threading

import pytest
from sqlalchemy import create_engine

from services.case.bootstrap import build_cases, build_relay
from services.case.ingest import Ingest
from services.case.settings import CaseSettings
from services.obligations.projection import ObligationsProjection
from shared.catalog import Catalog
from shared.consumer import Consumer
from shared.events import parse_batch
from shared.settings import ServiceSettings
from shared.stream.connect import open_stream
from tests.integration.test_consumer_restart import consumed, history, wait_until

pytestmark = pytest.mark.slow

PARTITIONS = 4


def assignments(log_file) -> list[list[int]]:
    return [[int(p) for p in re.findall(r"\d+", found)]
            for found in re.findall(r"assigned partitions \[([\d, ]*)\]", log_file.read_text())]


def test_two_consumers_share_the_partitions_and_one_takes_over_when_the_other_dies(
        database_url, pg_admin, kafka, topic, tmp_path):
    settings = CaseSettings(database_url=database_url, kafka_bootstrap_servers=kafka, kafka_topic=topic,
                            kafka_topic_partitions=PARTITIONS, data_dir=tmp_path)
    store = build_cases(settings)
    ingest = Ingest(store)
    relay = build_relay(settings, store)
    documents = history(300)
    first, second = documents[:len(documents) // 2], documents[len(documents) // 2:]
    ingest.submit(parse_batch(first)).result()
    assert relay.publish_pending() == len(first)

    env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_TOPIC": topic,
           "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS), "KAFKA_SESSION_TIMEOUT_MS": "6000", "CONSUMER_BATCH_SIZE": "50",
           "REFOLD_WORKERS": "1"}
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    projection = ObligationsProjection(engine, Catalog.load())
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    consumers = [subprocess.Popen([sys.executable, "-m", "services.run_consumer", "obligations"], env=env,
                                  stderr=log.open("w")) for log in logs]
    try:
        # both hold partitions at once: the last assignments are disjoint and cover the topic
        def shared() -> bool:
            last = [assignments(log)[-1] if assignments(log) else [] for log in logs]
            return all(last) and sorted(last[0] + last[1]) == list(range(PARTITIONS))
        assert wait_until(shared), [assignments(log) for log in logs]
        assert wait_until(lambda: consumed(engine, "obligations", "obligations") == len(first))

        consumers[1].send_signal(signal.SIGKILL)
        consumers[1].wait()
        ingest.submit(parse_batch(second)).result()
        assert relay.publish_pending() == len(second)
        assert wait_until(lambda: assignments(logs[0])[-1] == list(range(PARTITIONS)), timeout=60)
        assert wait_until(lambda: consumed(engine, "obligations", "obligations") == len(documents))
        assert wait_until(lambda: projection.counts()["stale"] == 0)
    finally:
        for consumer in consumers:
            consumer.terminate()
            consumer.wait(timeout=30)
    ingest.close()
    relay.close()

    # one consumer alone, from scratch, in a database of its own
    name = database_url.rsplit("/", 1)[1]
    with pg_admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}_alone"')
    alone_engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://") + "_alone")
    alone = ObligationsProjection(alone_engine, Catalog.load(), group="alone")
    stream = open_stream(ServiceSettings(kafka_bootstrap_servers=kafka, kafka_topic=topic,
                                            kafka_topic_partitions=PARTITIONS, kafka_session_timeout_ms=6000))
    stop = threading.Event()
    thread = threading.Thread(target=Consumer(alone, stream, "alone").run, args=(stop,))
    thread.start()
    try:
        assert wait_until(lambda: consumed(alone_engine, "obligations", "alone") == len(documents)
                          and alone.counts()["stale"] == 0)
    finally:
        stop.set()
        thread.join()
    assert projection.snapshot() == alone.snapshot()
    assert projection.counts()["obligations"] > 0
    store.close()
    engine.dispose()
    alone_engine.dispose()
    with pg_admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{name}_alone" WITH (FORCE)')
