"""Tracing with OpenTelemetry: one trace from `POST /events` through storing, publishing and
each consumer's projection write.

W3C trace context crosses the gaps: the case service stores the request's `traceparent` with
the event (the CloudEvents distributed-tracing attribute), the relay's publish span is its
child and travels in the Kafka message's `traceparent` header, and each consumer's process
span is a child of that. Spans follow the messaging semantic conventions. Spans are exported
over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise nothing is recorded and the
consumers skip making spans at all.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from shared.events import StreamEvent
from shared.settings import ServiceSettings


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


@contextmanager
def publishing(tracer: trace.Tracer, destination: str, events: Sequence[StreamEvent]) -> Iterator[Sequence[StreamEvent]]:
    """A `publish` span per event, each a child of the request that stored it, open until the
    broker has the batch; yields the events carrying their publish span's context."""
    if not recording():
        yield events
        return
    spans = [tracer.start_span(f"publish {destination}", context=parent(event.traceparent), kind=SpanKind.PRODUCER,
                               attributes=_attributes("publish", destination, event))
             for event in events]
    try:
        yield [event._replace(traceparent=_traceparent(span)) for event, span in zip(events, spans)]
    finally:
        for span in spans:
            span.end()


@contextmanager
def processing(tracer: trace.Tracer, destination: str, events: Sequence[StreamEvent], group: str) -> Iterator[None]:
    """A consumer's `process` span per delivered event, each a child of the event's publish
    span, open while the batch is written."""
    if not recording():
        yield
        return
    spans = [tracer.start_span(
        f"process {destination}", context=parent(event.traceparent), kind=SpanKind.CONSUMER,
        attributes={**_attributes("process", destination, event), "messaging.consumer.group.name": group})
        for event in events]
    try:
        yield
    finally:
        for span in spans:
            span.end()


def _attributes(operation: str, destination: str, event: StreamEvent) -> dict[str, str]:
    return {"messaging.system": "kafka", "messaging.operation.type": operation,
            "messaging.destination.name": destination, "messaging.message.id": event.id,
            "messaging.kafka.message.key": event.subject}


def _traceparent(span: trace.Span) -> str:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier["traceparent"]
