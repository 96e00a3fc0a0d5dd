"""One trace from `POST /events` to both consumers' projection writes, over PostgreSQL and the
real broker: the case service's request span, the relay's publish span (carried in the Kafka
`traceparent` header) and a process span in each consumer, all in the caller's trace."""

import time

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.bootstrap import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from tests.events import opened

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def recording_spans() -> InMemorySpanExporter:
    """Spans of this process into memory (the global provider can be set once per process)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def test_one_trace_from_the_request_through_the_relay_to_both_consumers(database_url, kafka, topic, tmp_path, serve):
    exporter = recording_spans()
    common = {"database_url": database_url, "kafka_bootstrap_servers": kafka, "kafka_topic": topic,
              "kafka_topic_partitions": 2, "kafka_session_timeout_ms": 6000, "data_dir": tmp_path}
    # groups of this test's own: the session's broker still knows the default groups from earlier
    # tests, and a join waits for whatever members it still counts there
    groups = {"obligations": f"obligations-{topic}", "reporting": f"reporting-{topic}"}
    try:
        with serve(case_app(lambda: case_bootstrap(CaseSettings(**common)))) as case, \
                serve(obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**common, refold_workers=0,
                                                                                     consumer_group=groups["obligations"])))), \
                serve(reporting_app(lambda: reporting_bootstrap(ReportingSettings(**common, refold_workers=0,
                                                                                 reporting_group=groups["reporting"])))):
            answer = case.post("/events", json=opened("case-traced", date="2019-01-01"),
                               headers={"content-type": "application/cloudevents+json", "traceparent": CALLER})
            assert answer.status_code == 201

            def in_trace() -> list:
                return [s for s in exporter.get_finished_spans() if f"{s.context.trace_id:032x}" == TRACE_ID]

            def processed_by() -> set[str]:
                return {s.attributes["messaging.consumer.group.name"] for s in in_trace() if s.kind == SpanKind.CONSUMER}

            # a group may see the event twice (a redelivery after a rebalance); wait for both groups
            deadline = time.monotonic() + 60
            while processed_by() != set(groups.values()) and time.monotonic() < deadline:
                time.sleep(0.1)
            spans = in_trace()
    finally:
        exporter.shutdown()

    # FastAPI's own instrumentation makes the request's spans: a server span and the endpoint's
    (request,) = [s for s in spans if s.kind == SpanKind.SERVER]
    (publish,) = [s for s in spans if s.kind == SpanKind.PRODUCER]
    process = {s.attributes["messaging.consumer.group.name"]: s for s in spans if s.kind == SpanKind.CONSUMER}
    in_request = {s.context.span_id for s in spans if s.instrumentation_scope.name == "fastapi"}
    assert request.name == "POST /events" and request.parent.span_id == int(CALLER.split("-")[2], 16)
    assert publish.name == f"publish {topic}" and publish.parent.span_id in in_request
    assert publish.instrumentation_scope.name == "frisag.relay"
    assert set(process) == set(groups.values())
    for span in process.values():
        assert span.name == f"process {topic}" and span.parent.span_id == publish.context.span_id
        assert span.attributes["messaging.kafka.message.key"] == "case-traced"
