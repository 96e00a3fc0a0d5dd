"""The README's OpenTelemetry collector snippet: the collector it configures receives OTLP/HTTP
where the services export to when set up as it says. A service started as a subprocess (its own
global tracer provider, as deployed) exports to a small OTLP/HTTP receiver standing in for the
collector; what arrives is decoded with the OTLP protobuf classes."""

import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import DEFAULT_ENDPOINT, DEFAULT_TRACES_EXPORT_PATH
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

ROOT = Path(__file__).parents[2]


def readme_block(marker: str) -> str:
    """The fenced block between `<!-- marker -->` and `<!-- /marker -->` in README.md."""
    found = re.search(rf"<!-- {marker} -->\n```\w+\n(.*?)```\n<!-- /{marker} -->", (ROOT / "README.md").read_text(),
                      re.DOTALL)
    assert found, f"README.md has no {marker} block"
    return found.group(1)


def services_endpoint() -> str:
    (endpoint,) = re.findall(r"^OTEL_EXPORTER_OTLP_ENDPOINT=(\S+)$", readme_block("otel-services"), re.MULTILINE)
    return endpoint


def test_the_collector_snippet_receives_otlp_http_on_the_port_the_services_export_to():
    config = yaml.safe_load(readme_block("otel-collector"))
    receiver = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    port = urlsplit(services_endpoint()).port
    # OTLP/HTTP's own port, as the OpenTelemetry exporter defaults to it
    assert port == urlsplit(DEFAULT_ENDPOINT).port == 4318
    assert receiver == f"0.0.0.0:{port}"
    pipeline = config["service"]["pipelines"]["traces"]
    assert "otlp" in pipeline["receivers"]
    assert all(name in config[kind] for kind in ("receivers", "processors", "exporters") for name in pipeline[kind])
    # the compose file's collector listens as the snippet's does
    compose = yaml.safe_load((ROOT / "deploy/compose/otel-collector.yaml").read_text())
    assert compose["receivers"] == config["receivers"]


def test_a_service_configured_as_the_readme_says_exports_its_spans_over_otlp_http(tmp_path):
    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((self.path, self.headers["content-type"], body))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # the README's endpoint with the collector's host and port replaced by the stand-in's
    endpoint = urlsplit(services_endpoint())._replace(netloc=f"127.0.0.1:{server.server_port}").geturl()
    # nothing else from this environment: the defaults (SQLite in DATA_DIR, the embedded stream)
    env = {"PATH": os.environ["PATH"], "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "DATA_DIR": str(tmp_path)}
    # the case service answers one request and exits; its provider sends what it holds on exit
    script = ("from fastapi.testclient import TestClient\n"
              "from services.case.api import create_app\n"
              "with TestClient(create_app()) as client:\n"
              "    assert client.get('/healthz').status_code == 200\n")
    try:
        subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()

    assert received, "nothing was exported"
    spans = []
    for path, content_type, body in received:
        assert path == f"/{DEFAULT_TRACES_EXPORT_PATH}" and content_type == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            spans += [(resource["service.name"], span.name, span.kind)
                      for scope_spans in resource_spans.scope_spans for span in scope_spans.spans]
    assert ("frisag-case", "GET /healthz", Span.SPAN_KIND_SERVER) in spans
