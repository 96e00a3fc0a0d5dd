"""The stream contract, run against both adapters: the embedded stream (SQLite case store, relay,
stream table) and Kafka (PostgreSQL + relay + a real Kafka-protocol broker)."""

import hashlib
import hmac
import json
import multiprocessing
import time
from collections import defaultdict

import pytest
from sqlalchemy import inspect

from services.case.bootstrap import bootstrap
from services.case.settings import CaseSettings
from shared.events import parse_batch
from shared.stream.connect import open_stream, publisher_factory
from shared.stream.embedded import stream_engine
from shared.stream.kafka import KafkaStream
from tests.events import benefit_ended, benefit_started, event, opened

CPRS = {f"case-{i}": f"{i + 1:02d}0190-{1000 + i}" for i in range(6)}


@pytest.fixture(params=["embedded", "kafka"])
def system(request, tmp_path):
    """(case service, stream) wired as `make run` does and as production does."""
    if request.param == "embedded":
        settings = CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path)
        service = bootstrap(settings)
        stream = open_stream(settings)
    else:
        kafka, topic = request.getfixturevalue("kafka"), request.getfixturevalue("topic")
        settings = CaseSettings(
            database_url=request.getfixturevalue("database_url"), kafka_bootstrap_servers=kafka,
            kafka_topic=topic, kafka_topic_partitions=3, data_dir=tmp_path,
        )
        service = bootstrap(settings)
        stream = KafkaStream(kafka, topic, session_timeout_ms=6000, heartbeat_interval_ms=1000)
    yield service, stream
    service.close()


def posted_history() -> list[dict]:
    documents = []
    for case_id, cpr in CPRS.items():
        documents += [
            opened(case_id, cpr=cpr),
            benefit_started(case_id),
            event("conversation.held", case_id, kind="jobsamtale", date="2019-02-01"),
            benefit_ended(case_id),
        ]
    return documents


def read(subscription, count: int, timeout: float = 30):
    deliveries = []
    deadline = time.monotonic() + timeout
    while len(deliveries) < count and time.monotonic() < deadline:
        deliveries += subscription.poll(timeout=0.5)
    return deliveries


def test_stored_events_arrive_in_case_order_pseudonymised_and_resumable(system):
    service, stream = system
    documents = posted_history()
    service.ingest.submit(parse_batch(documents)).result()

    first = stream.subscribe("contract-a", lambda partition: None)
    deliveries = read(first, len(documents))
    first.close()
    assert len(deliveries) == len(documents)

    by_case = defaultdict(list)
    for d in deliveries:
        by_case[d.event.subject].append(d.event)
    assert set(by_case) == set(CPRS)
    for case_id, events in by_case.items():
        assert [e.sequence for e in events] == [1, 2, 3, 4]
        assert [e.name for e in events] == ["case.opened", "benefit.started", "conversation.held", "benefit.ended"]
        assert events[0].data["municipality"] == "851" and len(events[0].data["citizen"]) == 32
        assert "cpr" not in events[0].data
        positions = [e.position for e in events]
        assert positions == sorted(positions)
    everything = json.dumps([d.event._asdict() for d in deliveries])
    for cpr in CPRS.values():
        assert cpr not in everything and cpr.replace("-", "") not in everything

    # A consumer that has applied up to some offset per partition resumes right after it.
    per_partition = defaultdict(list)
    for d in deliveries:
        per_partition[d.partition].append(d.offset)
    resume = {p: offsets[len(offsets) // 2] + 1 for p, offsets in per_partition.items()}
    expected = {(p, o) for p, offsets in per_partition.items() for o in offsets if o >= resume[p]}
    second = stream.subscribe("contract-b", lambda partition: resume.get(partition))
    again = read(second, len(expected))
    time.sleep(0.5)
    again += second.poll(timeout=0.5)
    second.close()
    assert {(d.partition, d.offset) for d in again} == expected


@pytest.mark.parametrize("key", ["a-pseudonym-key-of-32-characters", "another-key-of-32-characters-000"])
def test_the_citizen_on_the_stream_is_the_hmac_of_the_cpr_under_the_configured_key(tmp_path, key):
    """The oracle is HMAC-SHA256 written out here: an unkeyed (or wrongly keyed) pseudonym could
    be reversed by trying every CPR number, and no other test would notice."""
    settings = CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path, pseudonym_key=key)
    service = bootstrap(settings)
    try:
        service.ingest.submit(parse_batch([opened("case-0", cpr="010190-1000")])).result()
        [delivery] = read(open_stream(settings).subscribe("contract", lambda partition: None), 1)
    finally:
        service.close()
    expected = hmac.new(key.encode(), b"010190-1000", hashlib.sha256).hexdigest()[:32]  # DDMMYY-SSSS
    assert delivery.event.data["citizen"] == expected
    assert expected != hmac.new(b"", b"010190-1000", hashlib.sha256).hexdigest()[:32]


def test_both_adapters_put_a_case_in_the_same_partition(tmp_path, database_url, kafka, topic):
    """The embedded stream partitions by key as the Kafka producer does: one history posted to a
    case service of each shape lands, case by case, in the same partition numbers."""
    shapes = {"embedded": CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path / "e",
                                       kafka_topic_partitions=3),
              "kafka": CaseSettings(database_url=database_url, kafka_bootstrap_servers=kafka, kafka_topic=topic,
                                    kafka_topic_partitions=3, data_dir=tmp_path / "k")}
    documents, partitions = posted_history(), {}
    for shape, settings in shapes.items():
        service = bootstrap(settings)
        try:
            service.ingest.submit(parse_batch(documents)).result()
            stream = (open_stream(settings) if shape == "embedded" else
                      KafkaStream(kafka, topic, session_timeout_ms=6000, heartbeat_interval_ms=1000))
            subscription = stream.subscribe(None, lambda partition: None)
            deliveries = read(subscription, len(documents))
            subscription.close()
        finally:
            service.close()
        assert len(deliveries) == len(documents)
        partitions[shape] = {d.event.subject: d.partition for d in deliveries}
    assert partitions["embedded"] == partitions["kafka"]
    assert len(set(partitions["kafka"].values())) > 1  # spread, not all in one


def test_the_embedded_stream_counts_offsets_per_partition_and_refuses_a_position_beyond_an_end(tmp_path):
    settings = CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path, kafka_topic_partitions=3)
    service = bootstrap(settings)
    try:
        documents = posted_history()
        service.ingest.submit(parse_batch(documents)).result()
        stream = open_stream(settings)
        deliveries = read(stream.subscribe(None, lambda partition: None), len(documents))
    finally:
        service.close()
    ends = {p: len([d for d in deliveries if d.partition == p]) for p in range(3)}
    assert stream.lag({}) == ends and stream.lag({p: end + 5 for p, end in ends.items()}) == {0: 0, 1: 0, 2: 0}
    # offsets count from 0 in each partition, with no gap
    for p in range(3):
        assert sorted(d.offset for d in deliveries if d.partition == p) == list(range(ends[p]))

    # a stored position past the end (the stream's table lost rows): refused and reported, the
    # other partitions read on, from where they were
    lost, kept = 0, 1
    subscription = stream.subscribe(None, {lost: ends[lost] + 1, kept: 1}.get)
    assert set(subscription.invalid_positions()) == {lost}
    assert "beyond the partition's end" in subscription.invalid_positions()[lost]
    again = read(subscription, len(documents) - ends[lost] - 1, timeout=3)
    assert {d.partition for d in again} == set(range(3)) - {lost}
    assert min(d.offset for d in again if d.partition == kept) == 1
    assert len(again) == len(documents) - ends[lost] - 1

    # the topic emptied and written again under a running subscriber (a republish): what it reads
    # now would be taken for offsets it has passed; it refuses every partition instead
    connect, empty = publisher_factory(settings)
    empty()
    connect().publish([d.event for d in sorted(deliveries, key=lambda d: d.event.position)][:len(documents) // 2])
    assert read(subscription, 1, timeout=2) == []
    assert set(subscription.invalid_positions()) == {0, 1, 2}
    assert all("emptied and written again" in subscription.invalid_positions()[p] for p in (1, 2))
    fresh = read(stream.subscribe(None, lambda partition: None), len(documents) // 2)  # a rebuild reads it all
    assert len(fresh) == len(documents) // 2 and not stream.subscribe(None, lambda p: None).invalid_positions()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_processes_opening_a_new_embedded_stream_together_all_start(store, tmp_path, request):
    """A reviewer started three case replicas at once on a new PostgreSQL database: one died
    creating `stream_log`, which another had just created; make run's processes on SQLite too."""
    url = (f"sqlite:///{tmp_path / 'stream.sqlite'}" if store == "sqlite"
           else request.getfixturevalue("database_url").replace("postgresql://", "postgresql+psycopg://"))
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(6) as pool:
        together = manager.Barrier(6)
        opened = pool.starmap(_open_stream_engine, [(url, together)] * 6)
    assert opened == ["stream_log"] * 6


def _open_stream_engine(url: str, together) -> str:
    together.wait()
    engine = stream_engine(url)
    try:
        return ",".join(t for t in inspect(engine).get_table_names() if t == "stream_log")
    finally:
        engine.dispose()
