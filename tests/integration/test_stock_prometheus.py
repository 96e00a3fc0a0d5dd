"""Every service's `/metrics` as Prometheus reads it, in the production shape (PostgreSQL, the
broker, the relay): `prometheus_client`'s own parsers, of the classic text format and of
OpenMetrics, find every family once, with its declared type and its values; and the scrape
config the README gives points at the ports and path the services answer on."""

import re
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families as text_families

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.bootstrap import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from tests.conftest import LiveServer
from tests.events import opened
from tests.infra import wait_until

# one worker runs them all: they share the module's running services (Makefile)
pytestmark = pytest.mark.xdist_group("stock-prometheus")

ROOT = Path(__file__).parents[2]
PARTITIONS = 2
POSTED = 2
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
# the families each service exposes, with their types (counters without `_total`, as both parsers name them)
REQUESTS = {"frisag_http_requests": "counter"}
PROJECTION = {"frisag_projection_cases": "gauge", "frisag_projection_stale_cases": "gauge",
              "frisag_projection_failed_cases": "gauge", "frisag_consumer_position": "gauge",
              "frisag_consumer_lag": "gauge", "frisag_consumer_position_invalid": "gauge"}
FAMILIES = {"case": {**REQUESTS, "frisag_events_stored": "counter", "frisag_events_published": "counter",
                     "frisag_relay_lag": "gauge"},
            "obligations": {**REQUESTS, **PROJECTION},
            "reporting": {**REQUESTS, **PROJECTION}}


@pytest.fixture(scope="module")
def apis(databases, kafka, issuer, tmp_path_factory):
    """The three services over one database and topic (2 partitions), each event posted apart
    and published; the obligations and reporting replicas consume nothing (their group's lag
    is the whole stream)."""
    with databases.fresh() as database_url:
        common = {"database_url": database_url, "kafka_bootstrap_servers": kafka,
                  "kafka_topic": f"case-events-{uuid.uuid4().hex[:8]}", "kafka_topic_partitions": PARTITIONS,
                  "data_dir": tmp_path_factory.mktemp("prometheus")}
        token = issuer.everything()
        with LiveServer(case_app(lambda: case_bootstrap(CaseSettings(**common))), token) as case, \
                LiveServer(obligations_app(lambda: obligations_bootstrap(
                    ObligationsSettings(**common, run_consumer=False))), token) as obligations, \
                LiveServer(reporting_app(lambda: reporting_bootstrap(
                    ReportingSettings(**common, run_consumer=False))), token) as reporting:
            for i in range(POSTED):  # one record per Kafka batch (see test_metrics.post_one_at_a_time)
                answer = case.post("/events", json=opened(f"case-{i}"),
                                   headers={"content-type": "application/cloudevents+json"})
                assert answer.status_code == 201
                assert wait_until(lambda: relay_lag(case) == 0)
            yield {"case": case, "obligations": obligations, "reporting": reporting}


def relay_lag(case: httpx.Client) -> float:
    return families(case.get("/metrics"), text_families)["frisag_relay_lag"].samples[0].value


def families(answer: httpx.Response, parse) -> dict:
    """name: family, each name once (a family's lines grouped, as both formats require)."""
    assert answer.status_code == 200
    found = list(parse(answer.text))
    names = [f.name for f in found]
    assert len(names) == len(set(names)), f"a family split in parts: {names}"
    return {f.name: f for f in found}


def values(family) -> dict[str, float]:
    return {",".join(f"{k}={v}" for k, v in sorted(s.labels.items())): s.value for s in family.samples}


@pytest.mark.parametrize("service", FAMILIES)
@pytest.mark.parametrize("format", ["text", "openmetrics"])
def test_both_parsers_read_every_family_with_its_declared_type(apis, service, format):
    if format == "text":
        answer = apis[service].get("/metrics")
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        found = families(answer, text_families)
    else:
        answer = apis[service].get("/metrics", headers={"Accept": OPENMETRICS})
        assert answer.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
        found = families(answer, openmetrics_families)
    assert {name: f.type for name, f in found.items()} == FAMILIES[service]
    for family in found.values():  # a counter's samples are `<name>_total`
        suffix = "_total" if family.type == "counter" else ""
        assert all(s.name == family.name + suffix for s in family.samples)


def test_the_values_mean_what_they_did(apis):
    case = families(apis["case"].get("/metrics"), text_families)
    assert values(case["frisag_events_stored"]) == {"": POSTED}
    assert values(case["frisag_events_published"]) == {"": POSTED}
    assert values(case["frisag_relay_lag"]) == {"": 0}
    assert values(case["frisag_http_requests"])["method=POST,route=/events,status=201"] == POSTED
    for group in ("obligations", "reporting"):
        found = families(apis[group].get("/metrics", headers={"Accept": OPENMETRICS}), openmetrics_families)
        partitions = {f"group={group},partition={p}" for p in range(PARTITIONS)}
        assert values(found["frisag_consumer_position"]) == dict.fromkeys(partitions, 0)
        assert set(values(found["frisag_consumer_lag"])) == partitions
        assert sum(values(found["frisag_consumer_lag"]).values()) == POSTED  # nobody consumed
        assert values(found["frisag_consumer_position_invalid"]) == dict.fromkeys(partitions, 0)
        assert values(found["frisag_projection_cases"]) == {"": 0}


def readme_scrape_config() -> dict:
    text = (ROOT / "README.md").read_text()
    (snippet,) = re.findall(r"<!-- prometheus-scrape-config -->\n```yaml\n(.*?)```", text, re.DOTALL)
    return yaml.safe_load(snippet)


def test_the_readme_scrape_config_points_at_each_service_s_metrics(apis):
    """Its targets are the services' ports under docker compose and their pods' scrape
    annotations on Kubernetes; its path is where each service answers in the format Prometheus
    asks for."""
    (job,) = readme_scrape_config()["scrape_configs"]
    targets = {host: int(port) for host, port in
               (t.split(":") for c in job["static_configs"] for t in c["targets"])}
    assert set(targets) == set(FAMILIES)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for service, port in targets.items():
        command = compose[service]["command"]
        assert command[command.index("--port") + 1] == str(port)
        (deployment,) = [d for d in yaml.safe_load_all((ROOT / "deploy/base" / f"{service}.yaml").read_text())
                         if d["kind"] == "Deployment"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == job["metrics_path"]
        # what Prometheus 3 sends by default: OpenMetrics first, the classic text format after
        answer = apis[service].get(job["metrics_path"], headers={"Accept": (
            "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
            "text/plain;version=1.0.0;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")})
        assert set(families(answer, openmetrics_families)) == set(FAMILIES[service])
