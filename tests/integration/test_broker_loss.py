"""The broker losing the topic's data, against PostgreSQL and a real Kafka-protocol broker whose
storage is memory: restarting it loses every topic, offset and consumer group. The relay gives up
its leadership and makes a new producer, a topic with other partitions is refused, consumers
whose positions lie beyond the new topic's end say so instead of skipping, and the runbook's
commands (deploy/OPERATIONS.md, "The broker lost the topic's data") recover everything."""

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, select

from services.case.api import create_app as case_app
from services.case.bootstrap import RELAY_LOCK_ID, build_cases, build_relay
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.ingest import Ingest
from services.case.relay import published
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.projection import ObligationsProjection
from services.obligations.settings import ObligationsSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.bootstrap import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportingStore
from shared.catalog import Catalog
from shared.consumer import Consumer
from shared.events import parse_batch
from shared.projection import store_tables
from shared.stream import TopicMismatchError
from shared.stream.kafka import KafkaStream, end_offsets, ensure_topic, recreate_topic
from tests.events import event, opened
from tests.infra import ALERT_FOR, Broker, held, wait_until
from tests.integration.test_consumer_restart import history
from tests.integration.test_metrics import samples

pytestmark = pytest.mark.slow

PARTITIONS = 3
BATCH = {"content-type": "application/cloudevents-batch+json"}


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A broker of the test's own: it is restarted."""
    broker = Broker()
    broker.start()
    yield broker
    broker.stop()


def environment(database_url: str, kafka: str, topic: str, tmp_path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_TOPIC": topic,
            "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS), "KAFKA_SESSION_TIMEOUT_MS": "6000", "DATA_DIR": str(tmp_path),
            "REFOLD_WORKERS": "0"}


def store(settings: CaseSettings, documents: list[dict]) -> None:
    cases = build_cases(settings.model_copy(update={"kafka_bootstrap_servers": None}))
    ingest = Ingest(cases)
    ingest.submit(parse_batch(documents)).result()
    ingest.close()
    cases.close()




def test_a_relay_whose_broker_lost_everything_gives_up_the_leadership_and_publishes_again(
        database_url, broker, topic, tmp_path):
    settings = CaseSettings(database_url=database_url, kafka_bootstrap_servers=broker.bootstrap_servers,
                            kafka_topic=topic, kafka_topic_partitions=PARTITIONS, data_dir=tmp_path)
    before = [opened(f"a{i}") for i in range(30)]
    after = [opened(f"b{i}") for i in range(20)]
    store(settings, before)
    watcher = build_cases(settings)  # before the relay starts: both would create the tables
    recorder = watcher.factory.tracking_recorder()

    def relay_position() -> int:
        return published(recorder, topic)

    log = tmp_path / "relay.log"
    relay = subprocess.Popen([sys.executable, "-m", "services.case.run_relay"], stderr=log.open("w"),
                             env=environment(database_url, broker.bootstrap_servers, topic, tmp_path))
    try:
        assert wait_until(lambda: relay_position() == len(before), timeout=60)
        broker.stop()
        store(settings, after)  # the relay tries to publish these to a broker that is gone

        # it cannot: it gives the leadership up, so a standby relay (here: the test) can take it
        with psycopg.connect(database_url, autocommit=True) as standby:
            assert wait_until(lambda: standby.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK_ID,))
                              .fetchone()[0], timeout=90), log.read_text()
        assert relay_position() == len(before)

        broker.start()  # empty: no topic, no producer ids
        assert wait_until(lambda: relay_position() == len(before) + len(after), timeout=120), log.read_text()
        assert relay.poll() is None
    finally:
        relay.terminate()
        relay.wait(timeout=30)
        watcher.close()
    text = log.read_text()
    assert "gave up the leadership, making a new producer" in text
    assert f"created topic {topic} with {PARTITIONS} partitions" in text
    assert sorted(end_offsets(broker.bootstrap_servers, topic)) == list(range(PARTITIONS))  # as configured


def test_a_topic_with_other_partitions_than_configured_is_refused(database_url, kafka, topic, tmp_path, serve):
    ensure_topic(kafka, topic, PARTITIONS + 1)  # as a broker's default would make it
    common = {"database_url": database_url, "kafka_bootstrap_servers": kafka, "kafka_topic": topic,
              "kafka_topic_partitions": PARTITIONS, "kafka_session_timeout_ms": 6000, "data_dir": tmp_path}
    cases = build_cases(CaseSettings(**common))
    with pytest.raises(TopicMismatchError, match=f"has {PARTITIONS + 1} partitions, KAFKA_TOPIC_PARTITIONS is {PARTITIONS}"):
        build_relay(CaseSettings(**common), cases)
    cases.close()

    with serve(obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**common, refold_workers=0)))) as api:
        assert wait_until(lambda: "partitions, KAFKA_TOPIC_PARTITIONS is" in api.get("/readyz").text, timeout=60)
        answer = api.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["errors"][0]["field"] == "stream"
        invalid = samples(api, "frisag_consumer_position_invalid")
        assert invalid and set(invalid.values()) == {1.0}



def case_events(database_url: str, prefix: str) -> list[tuple[str, int]]:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    events = store_tables(prefix)[2]
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(select(events.c.case_id, events.c.sequence)).all())
    finally:
        engine.dispose()


def post(case: httpx.Client, documents: list[dict]) -> list[tuple[str, int]]:
    """Post in batches; the events acknowledged, as (case, sequence)."""
    acknowledged = []
    for start in range(0, len(documents), 100):
        answer = case.post("/events", json=documents[start:start + 100], headers=BATCH)
        assert answer.status_code == 201, answer.text
        acknowledged += [(o["subject"], o["sequence"]) for o in answer.json() if o["status"] == "stored"]
    return acknowledged


def stream_lost(api: httpx.Client) -> bool:
    """Readiness names the stream: the topic created again (a new topic id), positions beyond the
    new topic's end, or (when the broker made the topic again with its default partitions, as
    tansu does for any client asking for it) the partition count."""
    answer = api.get("/readyz")
    return answer.status_code == 503 and any(
        error["field"] == "stream" and ("the topic was created again" in error["reason"]
                                        or "beyond the partition's end" in error["reason"]
                                        or f"KAFKA_TOPIC_PARTITIONS is {PARTITIONS}" in error["reason"])
        for error in answer.json()["errors"])


def admin(env: dict[str, str], *argv: str, module: str = "services.admin") -> str:
    answer = subprocess.run([sys.executable, "-m", module, *argv], env=env, capture_output=True, text=True,
                            timeout=300)
    assert answer.returncode == 0, answer.stderr
    return answer.stdout


def fresh_rebuild(pg_admin, database_url: str, kafka: str, topic: str, service: str) -> list[tuple]:
    """The projection a new consumer group makes from the topic, in a database of its own."""
    name = f"{database_url.rsplit('/', 1)[1]}_{service}"
    with pg_admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/" + name)
    projection = (ObligationsProjection if service == "obligations" else ReportingStore)(engine, Catalog.load(), group="fresh")
    stream = KafkaStream(kafka, topic, PARTITIONS, session_timeout_ms=6000, heartbeat_interval_ms=1000)
    stop = threading.Event()
    thread = threading.Thread(target=Consumer(projection, stream, "fresh").run, args=(stop,))
    thread.start()
    try:
        assert wait_until(lambda: stream.lag(projection.stored_positions())
                          and not sum(stream.lag(projection.stored_positions()).values())
                          and projection.counts()["stale"] == 0, timeout=120)
        return projection.snapshot()
    finally:
        stop.set()
        thread.join()
        engine.dispose()
        with pg_admin.cursor() as cur:
            cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_after_the_broker_lost_the_topic_the_runbook_recovers_every_acknowledged_event(
        database_url, pg_admin, broker, topic, tmp_path, serve):
    kafka = broker.bootstrap_servers
    common = {"database_url": database_url, "kafka_bootstrap_servers": kafka, "kafka_topic": topic,
              "kafka_topic_partitions": PARTITIONS, "kafka_session_timeout_ms": 6000, "data_dir": tmp_path}
    env = environment(database_url, kafka, topic, tmp_path)
    cases = 125
    before = history(cases)  # 750 events before the broker loses them, fewer after
    after = [event("conversation.held", f"case-{i}", kind="jobsamtale", date="2019-07-01") for i in range(cases) if i % 7]

    def consumers():
        return (serve(obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**common, refold_workers=0)))),
                serve(reporting_app(lambda: reporting_bootstrap(ReportingSettings(**common, refold_workers=0)))))

    relay = subprocess.Popen([sys.executable, "-m", "services.case.run_relay"], env=env,
                             stderr=(tmp_path / "relay.log").open("w"))
    try:
        assert wait_until(lambda: end_offsets(kafka, topic), timeout=60)  # the relay made it, as configured
        with serve(case_app(lambda: case_bootstrap(CaseSettings(**common, run_relay=False)))) as case:
            served = consumers()
            with served[0] as obligations, served[1] as reporting:
                acknowledged = post(case, before)
                assert wait_until(lambda: len(case_events(database_url, "obligations")) == len(before)
                                  and len(case_events(database_url, "reporting")) == len(before), timeout=120)

                broker.stop()  # mid-stream: everything it held is gone
                broker.start()
                # the topic made again as configured (as a deployment's tooling would), so the
                # relay publishes what comes next into it: a case's later events, without their
                # earlier ones
                recreate_topic(kafka, topic, PARTITIONS)  # (tansu may have made one with 4 already)
                acknowledged += post(case, after)
                assert wait_until(lambda: sum(end_offsets(kafka, topic).values()) > 0, timeout=120)

                # detected, not skipped: readiness names the partitions, the metric says which; held
                # for ALERT_FOR seconds (as an operator's alert), so the consumer is settled in its
                # group when stopped: tansu keeps a member that left during its own join as the
                # group's leader for ever (docs/faults.md), and the consumers started after the
                # rebuild would then never get partitions (both held at once: one alert's wait, not two)
                assert wait_until(held(lambda: stream_lost(obligations) and stream_lost(reporting), ALERT_FOR),
                                  timeout=180), (obligations.get("/readyz").text, reporting.get("/readyz").text)
                for service, api in (("obligations", obligations), ("reporting", reporting)):
                    assert 1.0 in samples(api, "frisag_consumer_position_invalid").values()
                    assert min(samples(api, "frisag_consumer_lag").values()) >= 0
                    # nothing of the new topic was taken for something else
                    assert len(case_events(database_url, service)) == len(before)

            # the runbook: consumers stopped (rebuild is offline); the relay empties the topic and
            # republishes the store; the projections rebuilt
            assert "republished" in admin(env, "republish", module="services.case.admin")
            assert sorted(end_offsets(kafka, topic)) == list(range(PARTITIONS))
            for service in ("obligations", "reporting"):
                # small batches: a case's events republished after its later ones are not sorted
                # together into one batch
                assert f"rebuilt {cases} cases" in admin({**env, "CONSUMER_BATCH_SIZE": "20"}, "rebuild", service)

            served = consumers()
            with served[0] as obligations, served[1] as reporting:
                for api in (obligations, reporting):
                    assert wait_until(lambda: api.get("/readyz").status_code == 200, timeout=120), api.get("/readyz").text
    finally:
        relay.terminate()
        relay.wait(timeout=30)

    assert len(acknowledged) == len(before) + len(after)
    for service in ("obligations", "reporting"):
        assert case_events(database_url, service) == sorted(acknowledged)  # every one, once
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    for projection in (ObligationsProjection(engine, Catalog.load()), ReportingStore(engine, Catalog.load())):
        service = projection.prefix
        assert projection.snapshot() == fresh_rebuild(pg_admin, database_url, kafka, topic, service), service
    engine.dispose()
