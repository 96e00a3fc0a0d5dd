"""One trace from `POST /events` to both consumers' projection writes, over PostgreSQL and the
real broker: the case service's request span, the relay's send span (carried in the Kafka
`traceparent` header) and a process span in each consumer, all in the caller's trace. An event
that brings its own trace context keeps it, and the request's span links to it. Attribute names
and values are those of the OpenTelemetry semantic-conventions package itself; where each
message landed, those of the broker (or the embedded stream's table) read apart from the
services."""

import json
import sqlite3
import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import MessageSizeTooLargeError
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import messaging_attributes as messaging
from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MessagingOperationTypeValues as OperationType,
)
from opentelemetry.semconv._incubating.attributes.messaging_attributes import MessagingSystemValues as System
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import SpanKind, StatusCode

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.bootstrap import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from shared.events import StreamEvent
from shared.stream.kafka import KafkaPublisher
from tests.events import benefit_started, opened

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
# a second request, posting an event that carries a trace context of its own (the CloudEvents
# distributed-tracing extension): the trace the jobcenter system made the event in
SECOND_CALLER = "00-11111111111111111111111111111111-2222222222222222-01"
EVENT_TRACE_ID, EVENT_SPAN_ID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


def recording_spans() -> InMemorySpanExporter:
    """Spans of this process into memory (the global provider can be set once per process)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def trace_of(span) -> str:
    return f"{span.context.trace_id:032x}"


def placed_on_broker(kafka: str, topic: str, count: int) -> dict[str, tuple[int, int]]:
    """Event id -> (partition, offset) of each message on the topic, read with a plain Kafka client."""
    consumer = KafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        placed, deadline = {}, time.monotonic() + 20
        while len(placed) < count and time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=500).values():
                placed.update({json.loads(m.value)["id"]: (m.partition, m.offset) for m in messages})
        return placed
    finally:
        consumer.close()


def messaging_attributes(system: str, operation: OperationType, name: str, topic: str, event_id: str,
                         partition: int) -> dict:
    return {messaging.MESSAGING_SYSTEM: system, messaging.MESSAGING_OPERATION_TYPE: operation.value,
            messaging.MESSAGING_OPERATION_NAME: name, messaging.MESSAGING_DESTINATION_NAME: topic,
            messaging.MESSAGING_MESSAGE_ID: event_id, messaging.MESSAGING_DESTINATION_PARTITION_ID: str(partition)}


def test_one_trace_from_the_request_through_the_relay_to_both_consumers(database_url, kafka, topic, tmp_path, serve):
    exporter = recording_spans()
    common = {"database_url": database_url, "kafka_bootstrap_servers": kafka, "kafka_topic": topic,
              "kafka_topic_partitions": 2, "kafka_session_timeout_ms": 6000, "data_dir": tmp_path}
    # groups of this test's own: the session's broker still knows the default groups from earlier
    # tests, and a join waits for whatever members it still counts there
    groups = {"obligations": f"obligations-{topic}", "reporting": f"reporting-{topic}"}
    first = opened("case-traced", date="2019-01-01")
    second = {**benefit_started("case-traced", date="2019-01-01"),
              "traceparent": f"00-{EVENT_TRACE_ID}-{EVENT_SPAN_ID}-01"}
    try:
        with serve(case_app(lambda: case_bootstrap(CaseSettings(**common)))) as case, \
                serve(obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**common, refold_workers=0,
                                                                                     consumer_group=groups["obligations"])))), \
                serve(reporting_app(lambda: reporting_bootstrap(ReportingSettings(**common, refold_workers=0,
                                                                                 reporting_group=groups["reporting"])))):
            for posted, caller in ((first, CALLER), (second, SECOND_CALLER)):
                answer = case.post("/events", json=posted,
                                   headers={"content-type": "application/cloudevents+json", "traceparent": caller})
                assert answer.status_code == 201

            def processed_by(trace_id: str) -> frozenset[str]:
                return frozenset(s.attributes[messaging.MESSAGING_CONSUMER_GROUP_NAME]
                                 for s in exporter.get_finished_spans()
                                 if trace_of(s) == trace_id and s.kind == SpanKind.CONSUMER)

            # a group may see an event twice (a redelivery after a rebalance); wait for both groups
            deadline = time.monotonic() + 60
            while {processed_by(TRACE_ID), processed_by(EVENT_TRACE_ID)} != {frozenset(groups.values())} \
                    and time.monotonic() < deadline:
                time.sleep(0.1)
            spans = exporter.get_finished_spans()
        placed = placed_on_broker(kafka, topic, 2)
    finally:
        exporter.shutdown()

    # one case, one partition: its two events at offsets 0 and 1 of a new topic
    (partition,) = {partition for partition, _ in placed.values()}
    assert placed == {first["id"]: (partition, 0), second["id"]: (partition, 1)}

    # FastAPI's own instrumentation makes the request's spans: a server span and its operations'
    requests = {trace_of(s): s for s in spans if s.kind == SpanKind.SERVER}
    request = requests[TRACE_ID]
    assert request.name == "POST /events" and request.parent.span_id == int(CALLER.split("-")[2], 16)
    for posted in first, second:
        (send,) = [s for s in spans if s.kind == SpanKind.PRODUCER
                   and s.attributes[messaging.MESSAGING_MESSAGE_ID] == posted["id"]]
        process = {s.attributes[messaging.MESSAGING_CONSUMER_GROUP_NAME]: s for s in spans
                   if s.kind == SpanKind.CONSUMER and s.attributes[messaging.MESSAGING_MESSAGE_ID] == posted["id"]}
        offset = placed[posted["id"]][1]
        assert send.name == f"send {topic}" and send.instrumentation_scope.name == "frisag.relay"
        assert dict(send.attributes) == {
            **messaging_attributes(System.KAFKA.value, OperationType.SEND, "send", topic, posted["id"], partition),
            messaging.MESSAGING_KAFKA_OFFSET: offset, messaging.MESSAGING_KAFKA_MESSAGE_KEY: "case-traced"}
        assert set(process) == set(groups.values())
        for group, span in process.items():
            assert span.name == f"process {topic}" and span.parent.span_id == send.context.span_id
            assert trace_of(span) == trace_of(send)
            assert dict(span.attributes) == {
                **messaging_attributes(System.KAFKA.value, OperationType.PROCESS, "process", topic, posted["id"],
                                       partition),
                messaging.MESSAGING_KAFKA_OFFSET: offset, messaging.MESSAGING_KAFKA_MESSAGE_KEY: "case-traced",
                messaging.MESSAGING_CONSUMER_GROUP_NAME: group}

    in_request = {trace_id: [s for s in spans if trace_of(s) == trace_id and s.instrumentation_scope.name == "fastapi"]
                  for trace_id in requests}
    # the first event took the request's trace: its send span is a child of the request's
    (send,) = [s for s in spans if s.kind == SpanKind.PRODUCER and trace_of(s) == TRACE_ID]
    assert send.parent.span_id in {s.context.span_id for s in in_request[TRACE_ID]}
    assert [link for s in in_request[TRACE_ID] for link in s.links] == []
    # the second kept its own: the relay and the consumers continue the event's trace, and the
    # request (in its caller's trace) links to the span the event names
    (send,) = [s for s in spans if s.kind == SpanKind.PRODUCER and trace_of(s) == EVENT_TRACE_ID]
    assert send.parent.span_id == int(EVENT_SPAN_ID, 16)
    second_request = SECOND_CALLER.split("-")[1]
    assert requests[second_request].parent.span_id == int(SECOND_CALLER.split("-")[2], 16)
    (linking,) = [s for s in in_request[second_request] if s.links]
    assert linking.name == "fastapi.endpoint" and linking.parent.span_id == requests[second_request].context.span_id
    assert [(f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}")
            for link in linking.links] == [(EVENT_TRACE_ID, EVENT_SPAN_ID)]


def test_the_embedded_stream_traces_as_the_broker_does_with_its_own_system(tmp_path, serve):
    """Without a broker (SQLite, the stream table `stream_log`): the same spans, named for what
    they ran on, with no Kafka attributes; partition and offset those of the table's rows."""
    exporter = recording_spans()
    common = {"data_dir": tmp_path, "kafka_topic_partitions": 2}
    posted = [opened("case-embedded", date="2019-01-01"), benefit_started("case-embedded", date="2019-01-01")]
    try:
        with serve(case_app(lambda: case_bootstrap(CaseSettings(**common)))) as case, \
                serve(obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**common, refold_workers=0)))):
            for event in posted:
                assert case.post("/events", json=event, headers={"traceparent": CALLER}).status_code == 201

            def processed() -> set[str]:
                return {s.attributes[messaging.MESSAGING_MESSAGE_ID] for s in exporter.get_finished_spans()
                        if s.kind == SpanKind.CONSUMER and trace_of(s) == TRACE_ID}

            deadline = time.monotonic() + 30
            while processed() != {e["id"] for e in posted} and time.monotonic() < deadline:
                time.sleep(0.05)
            spans = [s for s in exporter.get_finished_spans() if trace_of(s) == TRACE_ID]
    finally:
        exporter.shutdown()

    with sqlite3.connect(tmp_path / "stream.sqlite") as table:
        placed = {json.loads(value)["id"]: (partition, offset)
                  for partition, offset, value in table.execute('SELECT partition, "offset", value FROM stream_log')}
    (partition,) = {partition for partition, _ in placed.values()}
    assert placed == {posted[0]["id"]: (partition, 0), posted[1]["id"]: (partition, 1)}
    for event in posted:
        of_event = [s for s in spans if s.attributes.get(messaging.MESSAGING_MESSAGE_ID) == event["id"]]
        (send,) = [s for s in of_event if s.kind == SpanKind.PRODUCER]
        (process,) = [s for s in of_event if s.kind == SpanKind.CONSUMER]
        offset = placed[event["id"]][1]
        topic = "frisag.case-events"
        assert send.name == f"send {topic}" and process.name == f"process {topic}"
        assert process.parent.span_id == send.context.span_id
        assert dict(send.attributes) == {
            **messaging_attributes("frisag_embedded", OperationType.SEND, "send", topic, event["id"], partition),
            "frisag.stream.offset": offset}
        assert dict(process.attributes) == {
            **messaging_attributes("frisag_embedded", OperationType.PROCESS, "process", topic, event["id"], partition),
            "frisag.stream.offset": offset, messaging.MESSAGING_CONSUMER_GROUP_NAME: "obligations"}


def test_a_send_the_broker_refuses_ends_its_span_as_an_error(kafka, topic):
    """An event the producer cannot send (larger than it may send): the send span says so, with
    the error's type, as the conventions ask, and the relay still sees the failure."""
    exporter = recording_spans()
    publisher = KafkaPublisher(kafka, topic, max_request_size=2_000)
    too_large = StreamEvent("big-1", "s", "dk.frisag.case.opened", "case-big", None, {"padding": "x" * 5_000}, 1, 1)
    try:
        with pytest.raises(MessageSizeTooLargeError):
            publisher.publish([too_large])
        (send,) = [s for s in exporter.get_finished_spans() if s.attributes.get(messaging.MESSAGING_MESSAGE_ID) == "big-1"]
    finally:
        publisher.close()
        exporter.shutdown()
    assert send.kind == SpanKind.PRODUCER and send.status.status_code == StatusCode.ERROR
    assert send.attributes[ERROR_TYPE] == "kafka.errors.MessageSizeTooLargeError"
    assert [e.name for e in send.events] == ["exception"]
