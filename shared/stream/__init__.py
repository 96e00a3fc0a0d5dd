"""The event stream between the case service and its consumers: one interface, two adapters.
The case service's relay publishes its log, pseudonymised, to either; the consumers read only the
stream (`shared.stream.connect` opens the one the settings choose).

- `shared.stream.embedded.EmbeddedStream`: the embedded default. An append-only table
  (`stream_log`, SQLite or any SQLAlchemy URL) holding the Kafka adapter's messages, partitioned
  by case as Kafka would; one subscriber reads every partition.
- `shared.stream.kafka.KafkaStream`: production. A Kafka topic, keyed by case; consumers join a
  consumer group.

A consumer keeps its own positions (in the same transaction as what it derives from the
events, for exactly-once effect) and tells the stream where to resume each partition.
"""

from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple, Protocol

from shared.events import StreamEvent


class Delivery(NamedTuple):  # a tuple: consumers make one per message
    partition: int
    offset: int
    event: StreamEvent


class TopicMismatchError(Exception):
    """The topic exists with another partition count than configured: a case's partition, and so
    the order of its events, would not be what the consumers' positions assume."""


# partition -> the next offset to read there, or None to read it from the beginning
ResumeFrom = Callable[[int], int | None]


class Subscription(Protocol):
    def poll(self, timeout: float = 1.0, max_records: int = 1000) -> Sequence[Delivery]:
        """The next deliveries (in order per partition), or an empty list after `timeout` s."""
        ...

    def assignment(self) -> Collection[Any]:
        """The partitions this subscriber holds now (none while a group rebalances)."""
        ...

    def invalid_positions(self) -> dict[int, str]:
        """Held partitions whose stored position lies outside the partition (the stream lost
        data), with why: paused, not consumed, until the stream is recovered."""
        ...

    def close(self) -> None: ...


class EventStream(Protocol):
    topic: str  # the topic the relay publishes into (a Kafka topic, or a topic of the embedded table)
    system: str  # what carries it, as the traces name it (`shared.tracing`): `kafka`, or the embedded stream

    def subscribe(self, group: str | None, resume_from: ResumeFrom) -> Subscription:
        """Reads from `resume_from` on; `group`: the consumer group sharing the partitions with
        the other replicas, or None for one reader of every partition (an offline rebuild)."""
        ...

    def lag(self, positions: dict[int, int]) -> dict[int, int]:
        """Per partition, how many events lie beyond a consumer's `positions` (next offsets)."""
        ...


class Publisher(Protocol):
    """The relay's end: `KafkaPublisher` or `EmbeddedPublisher`. `publish` returns once the stream
    holds the whole batch (the broker acknowledged it, or the table committed it)."""

    topic: str

    def publish(self, events: Sequence[StreamEvent]) -> None: ...

    def close(self) -> None: ...
