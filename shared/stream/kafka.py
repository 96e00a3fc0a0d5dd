"""Kafka stream: CloudEvents in the Kafka protocol binding's structured mode, keyed by case id.

The key keeps one case's events in one partition, in order. The value is the event in the
CloudEvents JSON format (`content-type: application/cloudevents+json`), with the extension
attributes `sequence` (the event's number within its case), `position` (its place in the case
store's log) and, where only a trial permits it, `permittedby`. A W3C `traceparent` header
carries the trace of the request that stored it. Structured rather than binary mode: a
consumer decodes one JSON document per message instead of a dozen headers, which in
kafka-python's pure-Python record reader cost more than the JSON.

Losing the broker's data (a topic deleted and recreated, retention passed, a broker that kept
it only in memory) is never silent: nothing here lets the broker create the topic with its
default partitions, a topic with other partitions than configured is refused
(`TopicMismatchError`), and a subscriber whose stored position lies outside a partition's
offsets, or that sees the topic created again under it (a new topic id), pauses those partitions
and reports them (`KafkaSubscription.invalid_positions`) instead of skipping to wherever the
broker would put it (deploy/OPERATIONS.md, "The broker lost the topic's data").
"""

import logging
import time
from collections.abc import Sequence
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, OffsetOutOfRangeError, TopicAlreadyExistsError
from kafka.structs import TopicPartition
from opentelemetry import trace

from shared import tracing
from shared.events import StreamEvent
from shared.stream import Delivery, ResumeFrom, TopicMismatchError
from shared.stream.message import from_message, to_message

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("frisag.relay")

PUBLISH_TIMEOUT = 30.0  # seconds a batch may take to be acknowledged before the relay gives up on the producer


class KafkaPublisher:
    """Publishes stored events; `publish` returns only when the broker has them all."""

    def __init__(self, bootstrap_servers: str, topic: str, partitions: int | None = None, **config: Any) -> None:
        self.topic = topic
        self.partitions = partitions  # what the topic must have; None: any
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            linger_ms=5,
            batch_size=256 * 1024,
            # one request in flight per connection: a retried batch cannot overtake a later one
            max_in_flight_requests_per_connection=1,
            # gzip needs no extra package and, measured here, doubles what one producer sends
            compression_type="gzip",
            # a lost topic is created again by the relay with the configured partitions
            # (`ensure_topic`), never by the broker with its default
            allow_auto_create_topics=False,
            max_block_ms=int(PUBLISH_TIMEOUT * 1000),
            delivery_timeout_ms=int(PUBLISH_TIMEOUT * 1000),
            request_timeout_ms=int(PUBLISH_TIMEOUT * 1000) - 1000,
            **config,
        )

    def publish(self, events: Sequence[StreamEvent]) -> None:
        # the producer's own metadata, which its partitioner uses: a topic the broker made again
        # with its default partitions would put cases in other partitions than before
        found = len(self._producer.partitions_for(self.topic) or ())
        if self.partitions and found != self.partitions:
            raise TopicMismatchError(f"topic {self.topic} has {found} partitions, KAFKA_TOPIC_PARTITIONS is "
                                     f"{self.partitions}: refusing it (deploy/OPERATIONS.md, \"The broker lost the "
                                     "topic's data\")")
        with tracing.sending(_tracer, tracing.KAFKA, self.topic, events) as sending:
            futures = [self._producer.send(self.topic, key=key, value=value, headers=headers)
                       for key, value, headers in map(to_message, sending.events)]
            self._producer.flush(timeout=PUBLISH_TIMEOUT)
            for index, future in enumerate(futures):
                placed = future.get(timeout=PUBLISH_TIMEOUT)  # raises if the broker refused any of them
                sending.placed(index, placed.partition, placed.offset)

    def close(self) -> None:
        self._producer.close(timeout=5)  # a broker that is gone must not hold up shutdown


class _Resume(ConsumerRebalanceListener):
    def __init__(self, subscription: "KafkaSubscription", resume_from: ResumeFrom) -> None:
        self._subscription = subscription
        self._resume_from = resume_from

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass  # positions live with the consumer's own data, not in Kafka

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))
        consumer, positions = self._subscription.consumer, {tp: self._resume_from(tp.partition) for tp in assigned}
        for tp, offset in positions.items():
            if offset is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
        # nothing is fetched before the positions are checked against the partitions' offsets
        consumer.pause(*assigned)
        self._subscription.to_check, self._subscription.invalid = positions, {}


class KafkaSubscription:
    def __init__(self, bootstrap_servers: str, topic: str, group: str | None, resume_from: ResumeFrom,
                 partitions: int | None = None, **config: Any) -> None:
        self.bootstrap_servers, self.topic, self.partitions = bootstrap_servers, topic, partitions
        self.to_check: dict[TopicPartition, int | None] = {}  # assigned, positions not checked yet
        self.invalid: dict[int, str] = {}  # partition -> why its stored position is not in it
        self.topic_id = None  # the topic's id when first seen: another one means it was created again
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group,
            enable_auto_commit=False,
            # a position outside the partition is reported, never reset to some other offset
            auto_offset_reset="none",
            allow_auto_create_topics=False,
            **config,
        )
        listener = _Resume(self, resume_from)
        if group is not None:
            self.consumer.subscribe([topic], listener=listener)
            return
        # one reader of every partition (an offline rebuild): no group, so nothing to wait for
        # while a broker rebalances around members that left
        partitions = self.consumer.partitions_for_topic(topic)
        if not partitions:
            self.consumer.close()
            raise TopicMismatchError(f"topic {topic} does not exist (KAFKA_TOPIC)")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        self.consumer.assign(assigned)
        listener.on_partitions_assigned(assigned)

    def poll(self, timeout: float = 1.0, max_records: int = 1000) -> list[Delivery]:
        self._check_topic_id()
        if self.to_check:
            self._check_positions()
        try:
            batches = self.consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except OffsetOutOfRangeError as exc:  # the partition shrank under a running consumer
            for tp, offset in exc.args[0].items():
                self._refuse(tp, f"stored position {offset} is out of the partition's range")
            return []
        return [
            Delivery(tp.partition, m.offset, from_message(m.value, m.headers))
            for tp, messages in batches.items()
            for m in messages
        ]

    def _check_topic_id(self) -> None:
        """Refuse every held partition once the topic was created again (deleted, or a broker that
        lost its state): the stored positions point into a topic that is gone, whatever the new
        one's offsets are by the time this consumer is assigned again."""
        # kafka-python keeps the ids its metadata requests return; it has no public accessor
        current = self.consumer._client.cluster.topic_id(self.topic)
        if current is None or current == self.topic_id:
            return
        if self.topic_id is None:
            self.topic_id = current
            return
        for tp in self.consumer.assignment():
            self.to_check.pop(tp, None)
            if tp.partition not in self.invalid:
                self._refuse(tp, f"the topic was created again (its id changed from {self.topic_id} to {current}): "
                                 "the messages the stored position counts are gone")

    def _check_positions(self) -> None:
        """Resume each newly assigned partition whose stored position lies within its offsets;
        refuse the others."""
        stored, self.to_check = self.to_check, {}
        found = len(self.consumer.partitions_for_topic(self.topic) or ())
        if self.partitions and found != self.partitions:
            for tp in stored:
                self._refuse(tp, f"the topic has {found} partitions, KAFKA_TOPIC_PARTITIONS is {self.partitions}")
            return
        ranges = offset_ranges(self.bootstrap_servers, list(stored))
        for tp, position in stored.items():
            start, end = ranges[tp]
            if position is not None and position > end:
                self._refuse(tp, f"stored position {position} lies beyond the partition's end {end}: "
                                 "the topic lost messages (deleted and created again?)")
            elif position is not None and position < start:
                self._refuse(tp, f"stored position {position} lies before the partition's first offset "
                                 f"{start}: messages not consumed yet were removed (retention?)")
            else:
                self.consumer.resume(tp)

    def _refuse(self, tp: TopicPartition, reason: str) -> None:
        self.consumer.pause(tp)
        self.invalid[tp.partition] = reason
        log.error("topic %s partition %d: %s; the partition is paused until the stream is recovered "
                  "(deploy/OPERATIONS.md, \"The broker lost the topic's data\")", tp.topic, tp.partition, reason)

    def invalid_positions(self) -> dict[int, str]:
        return dict(self.invalid)

    def assignment(self) -> set[TopicPartition]:
        return self.consumer.assignment()

    def close(self) -> None:
        self.consumer.close()


class KafkaStream:
    system = tracing.KAFKA

    def __init__(self, bootstrap_servers: str, topic: str, partitions: int | None = None, **consumer_config: Any) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.partitions = partitions  # what the topic must have; None: any
        self.consumer_config = consumer_config

    def subscribe(self, group: str | None, resume_from: ResumeFrom) -> KafkaSubscription:
        return KafkaSubscription(self.bootstrap_servers, self.topic, group, resume_from, self.partitions,
                                 **self.consumer_config)

    def lag(self, positions: dict[int, int]) -> dict[int, int]:
        # never negative: a position beyond the end is the subscriber's to report, not a lag
        return {p: max(0, end - positions.get(p, 0)) for p, end in end_offsets(self.bootstrap_servers, self.topic).items()}


def ensure_topic(bootstrap_servers: str, topic: str, partitions: int) -> None:
    """Create the topic with `partitions` if the cluster does not have it (deployments usually
    create it first); refuse one with another partition count."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        if topic not in admin.list_topics():
            admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
            log.info("created topic %s with %d partitions", topic, partitions)
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
    check_partitions(bootstrap_servers, topic, partitions)


def recreate_topic(bootstrap_servers: str, topic: str, partitions: int, timeout: float = 60.0) -> None:
    """Delete the topic, if there is one, and create it again empty with `partitions` and the
    replication factor it had: a republished stream holds the case store in its own order, with
    nothing published after a loss before it (consumers keep only a case's newer sequences)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        replication, deadline = None, time.monotonic() + timeout
        while True:
            try:
                if topic in admin.list_topics():
                    if replication is None:
                        [described] = admin.describe_topics([topic])
                        replicas = described["partitions"][0]["replica_nodes"] if described["partitions"] else ()
                        replication = max(1, len(replicas))
                    admin.delete_topics([topic])
                admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=replication or 1)])
                break
            except KafkaError:
                # a deletion completes in the background, a broker that just started may not
                # answer yet, and a client asking for the topic meanwhile can make the broker
                # create it with its default: delete and create again
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        log.warning("topic %s created again, empty, with %d partitions", topic, partitions)
    finally:
        admin.close()


def check_partitions(bootstrap_servers: str, topic: str, partitions: int) -> None:
    """Raise `TopicMismatchError` unless the topic has `partitions` (KAFKA_TOPIC_PARTITIONS);
    a missing topic passes (the relay creates it)."""
    found = len(end_offsets(bootstrap_servers, topic))
    if found and found != partitions:
        raise TopicMismatchError(f"topic {topic} has {found} partitions, KAFKA_TOPIC_PARTITIONS is {partitions}: "
                                 "refusing it (deploy/OPERATIONS.md, \"The broker lost the topic's data\")")


def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """Per partition, the offset the next message will get: a consumer's lag is this minus its
    position. Empty when the topic does not exist."""
    consumer = _probe(bootstrap_servers)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: end for tp, (_, end) in _ranges(consumer, partitions).items()}
    finally:
        consumer.close()


def offset_ranges(bootstrap_servers: str, partitions: list[TopicPartition]) -> dict[TopicPartition, tuple[int, int]]:
    """Per partition, its first offset and the offset the next message will get."""
    consumer = _probe(bootstrap_servers)
    try:
        return _ranges(consumer, partitions)
    finally:
        consumer.close()


def _probe(bootstrap_servers: str) -> KafkaConsumer:
    # no group, no topic created by asking: it only looks
    return KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, allow_auto_create_topics=False,
                         max_partition_fetch_bytes=1, fetch_max_bytes=1)


def _ranges(consumer: KafkaConsumer, partitions: list[TopicPartition]) -> dict[TopicPartition, tuple[int, int]]:
    if not partitions:
        return {}
    starts, ends = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
    # Kafka's end offset follows the last record. The test broker (tansu) answers the last
    # batch's first offset + 1, so read that batch: its last record + 1 is the end on both.
    reading = [tp for tp in partitions if ends[tp] > starts[tp]]
    consumer.assign(reading)
    for tp in reading:
        consumer.seek(tp, ends[tp] - 1)
    deadline = time.monotonic() + 5
    while reading and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=200).items():
            ends[tp] = max(ends[tp], records[-1].offset + 1)
            if tp in reading:
                reading.remove(tp)
                consumer.pause(tp)
    return {tp: (starts[tp], ends[tp]) for tp in partitions}
