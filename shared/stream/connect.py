"""The stream as the settings choose it: Kafka when KAFKA_BOOTSTRAP_SERVERS is set, otherwise the
embedded table. The consumers open it to read, the case service's relay to publish; both ends
see the same messages either way. The Kafka adapter is imported only when configured: a
process on the embedded stream does not load the Kafka client."""

from collections.abc import Callable

from shared.settings import ServiceSettings
from shared.stream import EventStream, Publisher
from shared.stream.embedded import EmbeddedPublisher, EmbeddedStream, stream_engine


def open_stream(settings: ServiceSettings) -> EventStream:
    if settings.kafka_bootstrap_servers:
        from shared.stream.kafka import KafkaStream
        timeout = settings.kafka_session_timeout_ms
        return KafkaStream(settings.kafka_bootstrap_servers, settings.kafka_topic, settings.kafka_topic_partitions,
                           session_timeout_ms=timeout, heartbeat_interval_ms=max(timeout // 6, 500))
    return EmbeddedStream(stream_engine(settings.embedded_stream_url()), settings.kafka_topic,
                          settings.kafka_topic_partitions)


def publisher_factory(settings: ServiceSettings) -> tuple[Callable[[], Publisher], Callable[[], None]]:
    """(a new publisher, the topic checked; empty the topic before the whole store is published
    into it again), for the relay."""
    if settings.kafka_bootstrap_servers:
        from shared.stream.kafka import KafkaPublisher, ensure_topic, recreate_topic
        servers, topic, partitions = (settings.kafka_bootstrap_servers, settings.kafka_topic,
                                      settings.kafka_topic_partitions)

        def connect() -> Publisher:
            # the topic as configured, or none: a topic lost and created again by the broker with
            # its default partitions is refused (TopicMismatchError), not published into
            ensure_topic(servers, topic, partitions)
            return KafkaPublisher(servers, topic, partitions)

        return connect, lambda: recreate_topic(servers, topic, partitions)
    publisher = EmbeddedPublisher(stream_engine(settings.embedded_stream_url()), settings.kafka_topic,
                                  settings.kafka_topic_partitions)
    return lambda: publisher, publisher.empty
