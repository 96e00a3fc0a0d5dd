"""`/metrics` and `/readyz` against PostgreSQL and the real broker: the consumer group's lag as
an API replica reports it rises while the group's consumer is stopped and falls to zero after it
restarts; the case service counts what it stored and published; readiness names what fails."""

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from tests.events import benefit_started, event, opened
from tests.infra import wait_until

PARTITIONS = 2
SINGLE = {"content-type": "application/cloudevents+json"}


def samples(client: httpx.Client, name: str) -> dict[str, float]:
    """The named metric's samples by their label text, from the Prometheus exposition."""
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert f"# TYPE {name} " in answer.text
    return {labels or "": float(value)
            for labels, value in re.findall(rf"^{name}(?:\{{(.*)\}})? (\S+)$", answer.text, re.MULTILINE)}


def total_lag(client: httpx.Client) -> float:
    return sum(samples(client, "frisag_consumer_lag").values())


def post_one_at_a_time(case: httpx.Client, documents: list[dict]) -> None:
    # one record per Kafka batch: the test broker (tansu) gives a partition's end offset as its
    # last batch's first offset + 1, where Kafka gives the offset after the last record
    for document in documents:
        assert case.post("/events", json=document, headers=SINGLE
                         ).status_code == 201
        assert wait_until(lambda: samples(case, "frisag_relay_lag") == {"": 0})


def consumer(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "services.run_consumer", "obligations"], env=env)


@pytest.mark.slow
def test_consumer_lag_rises_while_the_consumer_is_stopped_and_falls_to_zero_after_it_restarts(
        database_url, kafka, topic, tmp_path, serve):
    common = {"database_url": database_url, "kafka_bootstrap_servers": kafka, "kafka_topic": topic,
              "kafka_topic_partitions": PARTITIONS, "kafka_session_timeout_ms": 6000, "data_dir": tmp_path}
    env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_TOPIC": topic,
           "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS), "KAFKA_SESSION_TIMEOUT_MS": "6000", "REFOLD_WORKERS": "0"}
    first = [opened(f"case-{i}", date="2019-01-01") for i in range(4)]
    later = [benefit_started(f"case-{i}", date="2019-02-01") for i in range(4)] + \
            [event("case.assigned", "case-0", caseworker="cw-1", date="2019-02-02")]
    # the API replica consumes nothing itself: it reports the group's lag from the stored positions
    api = obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**common, run_consumer=False)))
    with serve(case_app(lambda: case_bootstrap(CaseSettings(**common)))) as case, serve(api) as obligations:
        post_one_at_a_time(case, first)
        running = consumer(env)
        try:
            assert samples(case, "frisag_events_stored_total") == {"": len(first)}
            assert samples(case, "frisag_events_published_total") == {"": len(first)}
            assert wait_until(lambda: total_lag(obligations) == 0
                              and sum(samples(obligations, "frisag_consumer_position").values()) == len(first))
        finally:
            running.send_signal(signal.SIGKILL)
            running.wait()
        lag = samples(obligations, "frisag_consumer_lag")
        assert set(lag) == {f'group="obligations",partition="{p}"' for p in range(PARTITIONS)}

        post_one_at_a_time(case, later)
        assert wait_until(lambda: total_lag(obligations) == len(later))  # nobody consumes: it rises and stays
        time.sleep(1)
        assert total_lag(obligations) == len(later)
        assert samples(obligations, "frisag_projection_cases") == {"": len(first)}

        running = consumer(env)
        try:
            assert wait_until(lambda: total_lag(obligations) == 0)
            assert wait_until(lambda: samples(obligations, "frisag_projection_stale_cases") == {"": 0})
        finally:
            running.terminate()
            running.wait(timeout=30)
        requests = samples(case, "frisag_http_requests_total")
        assert requests['method="POST",route="/events",status="201"'] == len(first) + len(later)


def test_the_case_service_reports_the_relay_lag_when_the_relay_runs_apart(database_url, kafka, topic, tmp_path,
                                                                         serve):
    settings = CaseSettings(database_url=database_url, kafka_bootstrap_servers=kafka, kafka_topic=topic,
                            kafka_topic_partitions=PARTITIONS, data_dir=tmp_path, run_relay=False)
    env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_TOPIC": topic,
           "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS)}
    with serve(case_app(settings=settings)) as case:
        for i in range(3):
            assert case.post("/events", json=opened(f"case-{i}"), headers=SINGLE).status_code == 201
        assert samples(case, "frisag_relay_lag") == {"": 3}  # nobody publishes yet
        relay = subprocess.Popen([sys.executable, "-m", "services.case.run_relay"], env=env)
        try:
            assert wait_until(lambda: samples(case, "frisag_relay_lag") == {"": 0})
            assert samples(case, "frisag_events_published_total") == {"": 3}
        finally:
            relay.terminate()
            relay.wait(timeout=30)


@pytest.mark.slow
def test_readiness_waits_for_the_partitions_and_names_an_unreachable_database(
        pg_admin, database_url, kafka, topic, tmp_path, serve):
    common = {"database_url": database_url, "kafka_bootstrap_servers": kafka, "kafka_topic": topic,
              "kafka_topic_partitions": PARTITIONS, "kafka_session_timeout_ms": 6000, "data_dir": tmp_path}
    # the case service creates the topic
    with serve(case_app(lambda: case_bootstrap(CaseSettings(**common)))), \
            serve(obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**common, refold_workers=0)))) \
            as obligations:
        answers = []
        assert wait_until(lambda: answers.append(obligations.get("/readyz")) or answers[-1].status_code == 200)
        assert answers[-1].json() == {"status": "ready"}
        for answer in answers[:-1]:  # before the group gave it its partitions
            assert answer.status_code == 503 and answer.headers["content-type"] == "application/problem+json"
            assert [e["field"] for e in answer.json()["errors"]] == ["consumer"]
        assert obligations.get("/healthz").status_code == 200

        with pg_admin.cursor() as cur:  # the projection's database goes away
            cur.execute(f'DROP DATABASE "{database_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        answer = obligations.get("/readyz")
        assert answer.status_code == 503 and answer.headers["content-type"] == "application/problem+json"
        (error,) = answer.json()["errors"]
        assert error["field"] == "database" and error["reason"].startswith("unreachable")
        assert obligations.get("/healthz").status_code == 200  # alive: restarting it would not help
