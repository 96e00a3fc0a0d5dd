"""The outbox relay against PostgreSQL and a real Kafka-protocol broker: what is posted over
HTTP reaches the topic as a CloudEvent, and a relay killed between store and publish loses
nothing when it restarts. Embedded (SQLite, the stream table), one relay publishes at a time."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from kafka import KafkaConsumer

from services.case.api import create_app
from services.case.bootstrap import bootstrap, build_cases, build_relay
from services.case.ingest import Ingest
from services.case.relay import tracking_name
from services.case.settings import CaseSettings
from shared.events import parse_batch
from shared.stream.connect import open_stream
from shared.stream.message import from_message
from tests.events import benefit_started, event, opened
from tests.infra import wait_until


@pytest.fixture
def settings(database_url, kafka, topic, tmp_path) -> CaseSettings:
    return CaseSettings(database_url=database_url, kafka_bootstrap_servers=kafka, kafka_topic=topic,
                        kafka_topic_partitions=3, data_dir=tmp_path)


def consume_all(kafka: str, topic: str, expected: int, timeout: float = 60) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=1500)
    messages = []
    deadline = time.monotonic() + timeout
    while len(messages) < expected and time.monotonic() < deadline:
        messages += list(consumer)
    consumer.close()
    return messages


def test_an_event_posted_over_http_arrives_as_a_cloudevent_keyed_by_case(settings, serve, kafka, topic):
    with serve(create_app(lambda: bootstrap(settings))) as client:
        assert client.post("/events", json=opened("case-42", cpr="0101901234")).status_code == 201
        assert client.post("/events", json=benefit_started("case-42", id_="momentum-000123")).status_code == 201
        messages = consume_all(kafka, topic, 2)
    assert len(messages) == 2
    assert {m.key for m in messages} == {b"case-42"} and len({m.partition for m in messages}) == 1
    second = messages[1]
    assert dict(second.headers)["content-type"] == b"application/cloudevents+json; charset=utf-8"
    document = json.loads(second.value)  # structured mode: the event in the CloudEvents JSON format
    assert document["specversion"] == "1.0" and document["id"] == "momentum-000123"
    assert document["type"] == "dk.frisag.benefit.started" and document["subject"] == "case-42"
    assert document["source"] == "jobcenter/851/momentum" and document["sequence"] == 2
    assert document["data"]["benefit"] == "ledighedsydelse" and document["position"] > json.loads(messages[0].value)["position"]
    for m in messages:
        raw = m.value + b"".join(v for _, v in m.headers)
        assert b"0101901234" not in raw and b"010190-1234" not in raw and b"cpr" not in raw
    assert "citizen" in from_message(messages[0].value, messages[0].headers).data


def store(settings: CaseSettings, cases: int, events_per_case: int) -> int:
    documents = []
    for i in range(cases):
        documents.append(opened(f"c{i}", cpr=f"0101{i % 100:02d}-{i % 4000:04d}"))
        documents += [event("conversation.held", f"c{i}", kind="jobsamtale", date=f"2019-02-{d + 1:02d}")
                      for d in range(events_per_case - 1)]
    store = build_cases(settings.model_copy(update={"kafka_bootstrap_servers": None}))
    ingest = Ingest(store)
    for start in range(0, len(documents), 2000):
        ingest.submit(parse_batch(documents[start:start + 2000])).result()
    ingest.close()
    store.close()
    return len(documents)


def assert_every_event_published_once_after_dedup(messages, stored: int) -> Counter:
    keys = Counter((m.key, json.loads(m.value)["sequence"]) for m in messages)
    assert len(keys) == stored  # every stored event arrived
    for key in {m.key for m in messages}:  # and per case, in sequence order
        sequences = [json.loads(m.value)["sequence"] for m in messages if m.key == key]
        first_seen = list(dict.fromkeys(sequences))
        assert first_seen == sorted(first_seen)
    return keys


class CrashAfterPublish:
    """A publisher whose process 'dies' after the broker took a batch, before the relay
    could record its position: the worst moment for a crash."""

    def __init__(self, publisher, crash_on_batch: int) -> None:
        self.publisher, self.batches, self.crash_on_batch = publisher, 0, crash_on_batch

    def publish(self, events) -> None:
        self.publisher.publish(events)
        self.batches += 1
        if self.batches == self.crash_on_batch:
            raise SystemExit("relay killed")


def test_a_relay_dying_after_publish_before_recording_republishes_only_that_batch(settings, kafka, topic):
    stored = store(settings, cases=50, events_per_case=10)
    cases = build_cases(settings)
    relay = build_relay(settings.model_copy(update={"relay_batch_size": 100}), cases)
    relay.publisher = CrashAfterPublish(relay.publisher, crash_on_batch=3)
    with pytest.raises(SystemExit):
        relay.publish_pending()
    assert relay.position() == 200  # two batches recorded, the third published but not recorded

    restarted = build_relay(settings.model_copy(update={"relay_batch_size": 100}), cases)
    assert restarted.publish_pending() == stored - 200
    messages = consume_all(kafka, topic, stored + 100)
    keys = assert_every_event_published_once_after_dedup(messages, stored)
    assert sum(keys.values()) == stored + 100  # exactly the crashed batch came twice
    cases.close()


def test_a_relay_pointed_at_a_new_topic_publishes_the_whole_log_into_it(settings, kafka, topic):
    stored = store(settings, cases=20, events_per_case=5)
    cases = build_cases(settings)
    assert build_relay(settings, cases).publish_pending() == stored
    assert build_relay(settings, cases).publish_pending() == 0  # the same topic: nothing new

    replay = settings.model_copy(update={"kafka_topic": f"{topic}-v2", "kafka_topic_partitions": 6})
    relay = build_relay(replay, cases)
    assert relay.position() == 0 and relay.publish_pending() == stored
    assert build_relay(settings, cases).position() == stored  # the old topic's position is its own
    messages = consume_all(kafka, f"{topic}-v2", stored)
    assert_every_event_published_once_after_dedup(messages, stored)
    assert max(m.partition for m in messages) >= 3  # spread over the new topic's partitions
    cases.close()


@pytest.mark.slow
def test_a_relay_process_killed_mid_stream_and_restarted_publishes_every_event(settings, kafka, topic):
    stored = store(settings, cases=400, events_per_case=25)
    env = {**os.environ, "DATABASE_URL": settings.database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka,
           "KAFKA_TOPIC": topic, "RELAY_BATCH_SIZE": "200"}
    watcher = build_cases(settings)
    position = watcher.factory.tracking_recorder()
    relay = subprocess.Popen([sys.executable, "-m", "services.case.run_relay"], env=env)
    try:
        deadline = time.monotonic() + 60
        while (position.max_tracking_id(tracking_name(topic)) or 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        relay.send_signal(signal.SIGKILL)
        relay.wait()
    killed_at = position.max_tracking_id(tracking_name(topic)) or 0
    watcher.close()
    assert 0 < killed_at < stored, "the relay must die mid-stream for this test to mean anything"

    relay = subprocess.Popen([sys.executable, "-m", "services.case.run_relay"], env=env)
    try:
        messages = consume_all(kafka, topic, stored)
    finally:
        relay.terminate()
        relay.wait(timeout=20)
    assert relay.returncode == 0
    assert_every_event_published_once_after_dedup(messages, stored)


@pytest.mark.slow
def test_embedded_one_relay_publishes_at_a_time_and_a_standby_takes_over_when_it_dies(tmp_path):
    """Without a broker or PostgreSQL (`make run` with a `run_relay` beside it): a lock file elects
    one relay; the other stands by, and publishes once the leader is killed. Every event reaches
    the embedded stream exactly once (a second publisher would append them twice)."""
    settings = CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env |= {"DATA_DIR": str(tmp_path), "RELAY_BATCH_SIZE": "20"}  # many small batches: long to publish
    stream = open_stream(settings)

    def on_stream() -> int:
        return sum(stream.lag({}).values())

    stored = store(settings, cases=20, events_per_case=5)
    leader = subprocess.Popen([sys.executable, "-m", "services.case.run_relay"], env=env)
    standby = None
    try:
        assert wait_until(lambda: on_stream() == stored, timeout=60)
        standby = subprocess.Popen([sys.executable, "-m", "services.case.run_relay"], env=env)
        time.sleep(2)  # the standby has started and tried for the lock
        stored += _more(settings, "second")
        assert wait_until(lambda: on_stream() == stored, timeout=60)
        time.sleep(1.5)  # three idle rounds: a second publisher would have appended by now
        assert on_stream() == stored
        leader.send_signal(signal.SIGKILL)
        leader.wait()
        stored += _more(settings, "third")
        assert wait_until(lambda: on_stream() == stored, timeout=60), "the standby did not take over"
        time.sleep(1.5)
        assert on_stream() == stored
    finally:
        for relay in (leader, standby):
            if relay is not None and relay.poll() is None:
                relay.terminate()
                relay.wait(timeout=20)
    subscription = stream.subscribe(None, lambda partition: None)
    deliveries = []
    while batch := subscription.poll(timeout=0.5):
        deliveries += batch
    assert len({(d.event.subject, d.event.sequence) for d in deliveries}) == len(deliveries) == stored


def _more(settings: CaseSettings, prefix: str) -> int:
    """Store 300 more cases of three events; how many events."""
    documents = []
    for i in range(300):
        documents += [opened(f"{prefix}-{i}", cpr=f"0202{i % 100:02d}-{i:04d}"),
                      event("conversation.held", f"{prefix}-{i}", kind="jobsamtale", date="2019-02-01"),
                      event("conversation.held", f"{prefix}-{i}", kind="jobsamtale", date="2019-03-01")]
    cases = build_cases(settings)
    ingest = Ingest(cases)
    ingest.submit(parse_batch(documents)).result()
    ingest.close()
    cases.close()
    return len(documents)
