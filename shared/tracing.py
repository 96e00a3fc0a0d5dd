"""Tracing with OpenTelemetry: one trace from `POST /events` through storing, publishing and
each consumer's projection write.

W3C trace context crosses the gaps: the case service stores the request's `traceparent` with
the event (the CloudEvents distributed-tracing attribute), the relay's send span is its child
and travels in the message's `traceparent` header, and each consumer's process span is a child
of that. An event posted with a `traceparent` of its own keeps it (the relay and consumers
continue the poster's trace), and the request's span links to it. Spans follow the messaging
semantic conventions of the pinned `opentelemetry-semantic-conventions`, whose names this uses.
Spans are exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise nothing is
recorded and the consumers skip making spans at all.
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.semconv._incubating.attributes import messaging_attributes as messaging
from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MessagingOperationTypeValues,
    MessagingSystemValues,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared.events import IncomingEvent, StreamEvent
from shared.settings import ServiceSettings
from shared.stream import Delivery

KAFKA = MessagingSystemValues.KAFKA.value
# the embedded stream (`shared.stream.embedded`) is no system the conventions name: a value of
# our own, and its offsets under a name of our own rather than Kafka's
EMBEDDED = "frisag_embedded"
EMBEDDED_OFFSET = "frisag.stream.offset"


def configure(settings: ServiceSettings, service: str) -> None:
    """Export this process's spans over OTLP/HTTP when an endpoint is configured."""
    if not settings.otel_exporter_otlp_endpoint or recording():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name or service}))
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)


def recording() -> bool:
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def parent(traceparent: str | None):
    return propagate.extract({"traceparent": traceparent}) if traceparent else None


def link_carried(events: Iterable[IncomingEvent]) -> None:
    """Link the current span (in `POST /events`: FastAPI's endpoint span, inside the request's
    server span) to the trace context each posted event brought along: those events keep theirs, so the relay and consumers continue another trace than the
    request's. The messaging conventions link a send to messages created elsewhere the same way."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for traceparent in dict.fromkeys(e.traceparent for e in events if e.traceparent):
        span.add_link(trace.get_current_span(parent(traceparent)).get_span_context())


class Sending:
    """The send spans of a batch being published, one per event: `events` carry their span's
    context; `placed` records where the stream put the i-th."""

    def __init__(self, system: str, events: Sequence[StreamEvent], spans: Sequence[trace.Span]) -> None:
        self.system, self.events, self._spans = system, events, spans

    def placed(self, index: int, partition: int, offset: int) -> None:
        if self._spans:
            self._spans[index].set_attributes(_placement(self.system, partition, offset))


@contextmanager
def sending(tracer: trace.Tracer, system: str, destination: str, events: Sequence[StreamEvent]) -> Iterator[Sending]:
    """A send span per event, each a child of the context the event was stored with, open until
    the stream holds the batch."""
    if not recording():
        yield Sending(system, events, ())
        return
    spans = [tracer.start_span(f"send {destination}", context=parent(event.traceparent), kind=SpanKind.PRODUCER,
                               attributes=_attributes(MessagingOperationTypeValues.SEND, system, destination, event))
             for event in events]
    with _ending(spans):
        yield Sending(system, [event._replace(traceparent=_traceparent(span)) for event, span in zip(events, spans)],
                      spans)


@contextmanager
def processing(tracer: trace.Tracer, system: str, destination: str, deliveries: Sequence[Delivery],
               group: str) -> Iterator[None]:
    """A consumer's process span per delivery, each a child of the event's send span, open while
    the batch is written."""
    if not recording():
        yield
        return
    spans = [tracer.start_span(
        f"process {destination}", context=parent(d.event.traceparent), kind=SpanKind.CONSUMER,
        attributes={**_attributes(MessagingOperationTypeValues.PROCESS, system, destination, d.event),
                    **_placement(system, d.partition, d.offset), messaging.MESSAGING_CONSUMER_GROUP_NAME: group})
        for d in deliveries]
    with _ending(spans):
        yield


@contextmanager
def _ending(spans: Sequence[trace.Span]) -> Iterator[None]:
    """End the spans when the block does; if it raised, each as an error of that exception's type."""
    try:
        yield
    except BaseException as error:
        kind = type(error)
        for span in spans:
            span.record_exception(error)
            span.set_attributes({ERROR_TYPE: f"{kind.__module__}.{kind.__qualname__}"})
            span.set_status(Status(StatusCode.ERROR, str(error)))
        raise
    finally:
        for span in spans:
            span.end()


def _attributes(operation: MessagingOperationTypeValues, system: str, destination: str,
                event: StreamEvent) -> dict[str, str]:
    attributes = {messaging.MESSAGING_SYSTEM: system, messaging.MESSAGING_OPERATION_TYPE: operation.value,
                  # the name of what this code does: the same as its type
                  messaging.MESSAGING_OPERATION_NAME: operation.value,
                  messaging.MESSAGING_DESTINATION_NAME: destination, messaging.MESSAGING_MESSAGE_ID: event.id}
    if system == KAFKA:
        attributes[messaging.MESSAGING_KAFKA_MESSAGE_KEY] = event.subject
    return attributes


def _placement(system: str, partition: int, offset: int) -> dict[str, str | int]:
    return {messaging.MESSAGING_DESTINATION_PARTITION_ID: str(partition),
            messaging.MESSAGING_KAFKA_OFFSET if system == KAFKA else EMBEDDED_OFFSET: offset}


def _traceparent(span: trace.Span) -> str:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier["traceparent"]
