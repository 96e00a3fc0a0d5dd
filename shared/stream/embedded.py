"""Embedded stream: the relay appends to one table, `stream_log`, and consumers read it; no broker.

The messages are the Kafka adapter's (`shared.stream.message`): the same pseudonymised
CloudEvents, keyed by case, in the partition Kafka's default partitioner would choose (murmur2 of
the key), with offsets counted per partition from 0. `position` orders the whole table: a
subscriber follows it with one indexed query instead of one per partition. SQLite by default
(DATA_DIR/stream.sqlite), any SQLAlchemy URL otherwise (STREAM_URL).

One writer at a time appends (the relay's leadership; on PostgreSQL a table lock besides), so
`position` grows in commit order and a reader never skips a row committed late. A consumer group
has no meaning without a broker: one subscriber reads every partition (run one consumer process
per group, as `make run` does).
"""

import logging
import time
from collections.abc import Sequence

from opentelemetry import trace
from sqlalchemy import (BigInteger, Column, Engine, Index, Integer, LargeBinary, MetaData, String, Table, create_engine,
                        delete, event, func, insert, select)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from shared import tracing
from shared.events import StreamEvent
from shared.stream import Delivery, ResumeFrom
from shared.stream.message import from_message, partition_of, to_message

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("frisag.relay")
metadata = MetaData()
stream_log = Table(
    "stream_log", metadata,
    Column("position", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", LargeBinary, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("traceparent", String(55)),
    # a partition's offsets are unique: a second writer appending the same offset fails
    Index("stream_log_partition_offset", "topic", "partition", "offset", unique=True),
    Index("stream_log_topic_position", "topic", "position"),
    sqlite_autoincrement=True,  # a position is never used again, not even after `empty`
)


def stream_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        # write-ahead log: the consumers' polling never blocks the relay's appends, nor they it
        event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA journal_mode=WAL"))
    for attempt in range(1, 21):
        try:
            metadata.create_all(engine)
            break
        except (IntegrityError, OperationalError, ProgrammingError):
            # another process is creating it (PostgreSQL: a duplicate; SQLite: locked, or "already
            # exists" before its creation was visible): look again; a lasting failure is raised
            if attempt == 20:
                raise
            time.sleep(0.05 * attempt)
    return engine


def end_offsets(engine: Engine, topic: str, partitions: int) -> dict[int, int]:
    """Per partition, the offset the next message will get."""
    with engine.connect() as conn:
        ends = dict(conn.execute(select(stream_log.c.partition, func.max(stream_log.c.offset) + 1)
                                 .where(stream_log.c.topic == topic).group_by(stream_log.c.partition)).all())
    return {p: ends.get(p, 0) for p in range(partitions)}


class EmbeddedPublisher:
    """The relay's publisher without a broker: `publish` returns once the batch is committed."""

    def __init__(self, engine: Engine, topic: str, partitions: int) -> None:
        self.engine, self.topic, self.partitions = engine, topic, partitions

    def publish(self, events: Sequence[StreamEvent]) -> None:
        with tracing.sending(_tracer, tracing.EMBEDDED, self.topic, events) as sending, self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # one appender: positions grow in commit order
                conn.exec_driver_sql("LOCK TABLE stream_log IN EXCLUSIVE MODE")
            ends = dict(conn.execute(select(stream_log.c.partition, func.max(stream_log.c.offset) + 1)
                                     .where(stream_log.c.topic == self.topic).group_by(stream_log.c.partition)).all())
            rows = []
            for index, event in enumerate(sending.events):
                key, value, _ = to_message(event)
                partition = partition_of(key, self.partitions)
                offset = ends.get(partition, 0)
                ends[partition] = offset + 1
                sending.placed(index, partition, offset)
                rows.append({"topic": self.topic, "partition": partition, "offset": offset, "key": key,
                             "value": value, "traceparent": event.traceparent})
            if rows:
                conn.execute(insert(stream_log), rows)

    def empty(self) -> None:
        """Before the whole case store is published again: the topic starts empty."""
        with self.engine.begin() as conn:
            conn.execute(delete(stream_log).where(stream_log.c.topic == self.topic))

    def close(self) -> None:
        pass  # the engine is the stream's owner's


class EmbeddedSubscription:
    IDLE_WAIT = 0.05  # seconds between looks at the table when it has nothing new

    def __init__(self, engine: Engine, topic: str, partitions: int, resume_from: ResumeFrom) -> None:
        self.engine, self.topic = engine, topic
        ends = end_offsets(engine, topic, partitions)
        self.invalid: dict[int, str] = {}
        self.next: dict[int, int] = {}  # partition -> the next offset to deliver there
        for partition, end in ends.items():
            stored = resume_from(partition) or 0
            if stored > end:  # e.g. a stream file deleted under a projection that kept its positions
                self.invalid[partition] = (f"stored position {stored} lies beyond the partition's end {end}: "
                                           "the stream lost messages (its table emptied or deleted?)")
            else:
                self.next[partition] = stored
        self._fresh_from = self._first_needed()  # partition -> the table position its new rows start at
        self._after = min(self._fresh_from.values(), default=1) - 1

    def _first_needed(self) -> dict[int, int]:
        """Per held partition, the table position of the first row it still needs (past the table's
        end when it needs none yet). A row of the partition there or later with an offset it has
        already passed means the topic was emptied and written again under this subscriber."""
        with self.engine.connect() as conn:
            beyond = conn.execute(select(func.coalesce(func.max(stream_log.c.position), 0))).scalar() + 1
            return {partition: conn.execute(select(stream_log.c.position).where(
                        stream_log.c.topic == self.topic, stream_log.c.partition == partition,
                        stream_log.c.offset == offset)).scalar() or beyond
                    for partition, offset in self.next.items()}

    def poll(self, timeout: float = 1.0, max_records: int = 1000) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        columns = stream_log.c
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(select(columns.position, columns.partition, columns.offset, columns.value,
                                           columns.traceparent)
                                    .where(columns.topic == self.topic, columns.position > self._after)
                                    .order_by(columns.position).limit(max_records)).all()
            deliveries = []
            for position, partition, offset, value, traceparent in rows:
                self._after = position
                expected = self.next.get(partition)
                if expected is None:
                    continue  # a partition refused
                if offset < expected:
                    if position >= self._fresh_from[partition]:
                        self._refuse(partition, f"offset {offset} came after {expected - 1}: the topic was emptied "
                                                "and written again (a republish) under this consumer; the "
                                                "messages its stored position counts are gone")
                    continue  # consumed before
                self.next[partition] = offset + 1
                headers = [("traceparent", traceparent.encode())] if traceparent else []
                deliveries.append(Delivery(partition, offset, from_message(value, headers)))
            if deliveries:
                return deliveries
            remaining = deadline - time.monotonic()
            if remaining <= 0 or rows:
                return []
            time.sleep(min(self.IDLE_WAIT, remaining))

    def _refuse(self, partition: int, reason: str) -> None:
        del self.next[partition]
        self.invalid[partition] = reason
        log.error("stream %s partition %d: %s; the partition is paused until the projection is rebuilt "
                  "(python -m services.admin rebuild)", self.topic, partition, reason)

    def assignment(self) -> set[int]:
        return set(self.next) | set(self.invalid)

    def invalid_positions(self) -> dict[int, str]:
        return dict(self.invalid)

    def close(self) -> None:
        pass


class EmbeddedStream:
    system = tracing.EMBEDDED

    def __init__(self, engine: Engine, topic: str, partitions: int) -> None:
        self.engine, self.topic, self.partitions = engine, topic, partitions

    def subscribe(self, group: str | None, resume_from: ResumeFrom) -> EmbeddedSubscription:
        # no broker to share partitions among a group's members: this subscriber holds them all
        return EmbeddedSubscription(self.engine, self.topic, self.partitions, resume_from)

    def lag(self, positions: dict[int, int]) -> dict[int, int]:
        return {p: max(0, end - positions.get(p, 0)) for p, end in end_offsets(self.engine, self.topic,
                                                                                self.partitions).items()}
