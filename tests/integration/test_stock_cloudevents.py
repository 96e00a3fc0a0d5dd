"""The official CloudEvents SDK (`cloudevents`, pinned in pyproject.toml) against the live case
service: what it posts in HTTP binary mode, in structured mode and as a batch (its JSON format's
events in an array: 2.2.0 has no batch of its own) is stored as it was sent; and what the relay
publishes, embedded or on the real broker, reads with its Kafka binding with the time the event
was accepted and its data's content type."""

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from cloudevents.core.bindings import http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from kafka import KafkaConsumer
from sqlalchemy import select

from services.case.api import create_app
from services.case.bootstrap import bootstrap
from services.case.settings import CaseSettings
from shared.stream.embedded import stream_engine, stream_log
from tests.conftest import LiveServer
from tests.events import benefit_started, opened
from tests.infra import fresh_database, is_problem, wait_until

README = Path(__file__).resolve().parents[2] / "README.md"
FORMAT = JSONFormat()
SOURCE = "jobcenter/851/Momentum Øst 100%"  # in binary mode percent-encoded: a space, non-ASCII, a percent sign


@pytest.fixture(scope="module")
def case_service(pg_admin, issuer, tmp_path_factory) -> Iterator[httpx.Client]:
    """The case service on PostgreSQL, as production runs it."""
    with fresh_database(pg_admin) as url:
        settings = CaseSettings(database_url=url, kafka_bootstrap_servers=None,
                                data_dir=tmp_path_factory.mktemp("case"))
        with LiveServer(create_app(lambda: bootstrap(settings)), issuer.everything()) as client:
            yield client


def sdk_event(type_: str, case_id: str, data: dict, **attributes) -> CloudEvent:
    return CloudEvent({"type": f"dk.frisag.{type_}", "source": SOURCE, "subject": case_id, **attributes}, data)


def post(client: httpx.Client, message: http.HTTPMessage) -> httpx.Response:
    return client.post("/events", headers=message.headers, content=message.body)


def stored(client: httpx.Client, case_id: str) -> list[dict]:
    answer = client.get(f"/cases/{case_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()["events"]


def assert_stored_as_sent(stored_event: dict, sent: CloudEvent) -> None:
    assert {k: stored_event[k] for k in ("specversion", "id", "source", "type", "subject")} == {
        k: sent.get_attributes()[k] for k in ("specversion", "id", "source", "type", "subject")}
    assert datetime.fromisoformat(stored_event["time"]) == sent.get_time()
    assert stored_event["data"] == sent.get_data()


MODES = {"binary": http.to_binary, "structured": http.to_structured}
DATA_TYPES = [None, "application/json", "application/json; charset=utf-8"]


@pytest.mark.parametrize("datacontenttype", DATA_TYPES)
@pytest.mark.parametrize("mode", MODES)
def test_an_event_the_sdk_posts_is_stored_as_it_was_sent(case_service, mode, datacontenttype):
    case_id = f"sdk-{mode}-{DATA_TYPES.index(datacontenttype)}"
    typed = {"datacontenttype": datacontenttype} if datacontenttype else {}
    opening = sdk_event("case.opened", case_id, {"cpr": "010190-1234", "municipality": "851", "date": "2019-01-01"},
                        **typed)
    started = sdk_event("benefit.started", case_id, {"benefit": "ledighedsydelse", "date": "2019-01-01"}, **typed,
                        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    for sent in (opening, started):
        answer = post(case_service, MODES[mode](sent, FORMAT))
        assert answer.status_code == 201, answer.text
        assert answer.json()["id"] == sent.get_id() and answer.json()["status"] == "stored"
    assert post(case_service, MODES[mode](started, FORMAT)).status_code == 200  # a repeat: a duplicate
    first, second = stored(case_service, case_id)
    assert first["data"] == {"cpr": "010190-****", "municipality": "851", "date": "2019-01-01"}  # masked
    assert_stored_as_sent({**first, "data": opening.get_data()}, opening)
    assert_stored_as_sent(second, started)
    assert second["traceparent"] == started.get_extension("traceparent")


def test_a_batch_of_the_sdks_json_format_is_stored_whole(case_service):
    events = [sdk_event("case.opened", "sdk-batch",
                        {"cpr": "010190-1234", "municipality": "851", "date": "2019-01-01"}),
              sdk_event("benefit.started", "sdk-batch", {"benefit": "dagpenge", "date": "2019-01-01"},
                        datacontenttype="application/json; charset=utf-8")]
    body = b"[" + b",".join(FORMAT.write(e) for e in events) + b"]"
    answer = case_service.post("/events", content=body,
                               headers={"content-type": "application/cloudevents-batch+json; charset=utf-8"})
    assert answer.status_code == 201, answer.text
    assert [o["sequence"] for o in answer.json()] == [1, 2]
    assert_stored_as_sent(stored(case_service, "sdk-batch")[1], events[1])


def binary(case_id: str, **changes) -> http.HTTPMessage:
    """A benefit.started in binary mode as the SDK sends it, with headers changed (None: removed)."""
    message = http.to_binary(sdk_event("benefit.started", case_id, {"benefit": "dagpenge", "date": "2019-01-01"},
                                       datacontenttype="application/json"), FORMAT)
    headers = {k: v for k, v in {**message.headers, **changes}.items() if v is not None}
    return http.HTTPMessage(headers, message.body)


REFUSED = {  # request -> (status, the field named)
    "binary without ce-type": (binary("sdk-r", **{"ce-type": None}), 422, "type"),
    "binary, an unknown attribute": (binary("sdk-r", **{"ce-colour": "blue"}), 422, "colour"),
    "binary, specversion 0.3": (binary("sdk-r", **{"ce-specversion": "0.3"}), 422, "specversion"),
    "binary, its time not a time": (binary("sdk-r", **{"ce-time": "yesterday"}), 422, "time"),
    "binary, data not JSON": (binary("sdk-r", **{"content-type": "text/plain"}), 415, "datacontenttype"),
    "binary, JSON in Latin-1": (binary("sdk-r", **{"content-type": "application/json; charset=iso-8859-1"}), 415,
                                "datacontenttype"),
    "binary, wrong data": (http.HTTPMessage(binary("sdk-r").headers, b'{"benefit": "lottery", "date": "2019-01-01"}'),
                           422, "data.benefit"),
    "binary, data not an object": (http.HTTPMessage(binary("sdk-r").headers, b"[1]"), 422, "data"),
    "structured in Latin-1": (http.HTTPMessage(
        {"content-type": "application/cloudevents+json; charset=iso-8859-1"},
        http.to_structured(sdk_event("plan.updated", "sdk-r", {"date": "2019-01-01"}), FORMAT).body),
        415, "Content-Type"),
    "structured, data in XML": (http.to_structured(sdk_event("plan.updated", "sdk-r", {"date": "2019-01-01"},
                                                             datacontenttype="application/xml"), FORMAT),
                                422, "datacontenttype"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_refusal_is_a_problem_naming_the_field_and_stores_nothing(case_service, name):
    message, status, field = REFUSED[name]
    opening = opened("sdk-r", id_="sdk-r-opened")  # so that each event, were it not refused, would be stored
    assert case_service.post("/events", json=opening).status_code in (200, 201)
    problem = is_problem(post(case_service, message), status)
    assert field in [e["field"] for e in problem["errors"]], problem
    assert len(stored(case_service, "sdk-r")) == 1


@pytest.mark.parametrize("headers, field", [
    ([("ce-id", "a"), ("ce-id", "b")], "id"),  # which was meant?
    ([("ce-id", "%FF")], "id"),  # percent-encoded, but not UTF-8
    ([("ce-id", "Ø".encode())], "id"),  # UTF-8 not percent-encoded (read as latin-1, it would be Ã and a C1 control)
    ([("ce-id", "a%zz")], "id"),  # not an escape
    ([("ce-id", "a%4")], "id"),  # half an escape
    ([("ce-id", "a"), ("ce-data", "{}")], "data"),  # the body is the data
])
def test_a_binary_attribute_given_twice_not_percent_encoded_or_not_utf8_or_data_as_a_header_is_refused(
        case_service, headers, field):
    message = binary("sdk-h", **{"ce-id": None})
    answer = case_service.post("/events", headers=[*message.headers.items(), *headers], content=message.body)
    assert [e["field"] for e in is_problem(answer, 422)["errors"]] == [field]


def readme_snippet(name: str) -> str:
    """The Python between `<!-- name -->` and `<!-- /name -->` in README.md."""
    block = re.search(rf"<!-- {name} -->\n```python\n(.*?)```\n<!-- /{name} -->", README.read_text(), re.DOTALL)
    assert block, f"README.md has no {name} snippet"
    return block.group(1)


def test_the_readmes_sdk_snippet_posts_an_event_that_is_stored(case_service):
    assert case_service.post("/events", json=opened("case-42", id_="readme-opened")).status_code == 201
    token = case_service.headers["authorization"].removeprefix("Bearer ")
    namespace = {"CASE_URL": str(case_service.base_url).rstrip("/"), "TOKEN": token}
    exec(readme_snippet("cloudevents-post"), namespace)  # noqa: S102 - the README's own code
    [sent] = [v for v in namespace.values() if isinstance(v, CloudEvent)]
    assert_stored_as_sent(stored(case_service, "case-42")[-1], sent)


# --- the stream ---

def untimed(document: dict) -> dict:
    return {k: v for k, v in document.items() if k != "time"}


@pytest.fixture(params=["embedded", "kafka"])
def stream(request, tmp_path) -> tuple[CaseSettings, Callable[[int], list]]:
    """The case service's settings, and a reader of the first n messages of its stream, raw, as
    kafka-python's records (key, value, headers)."""
    if request.param == "embedded":
        settings = CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path)

        def messages(count: int) -> list:
            engine = stream_engine(settings.embedded_stream_url())

            def rows() -> list:
                with engine.connect() as conn:
                    return conn.execute(select(stream_log.c.key, stream_log.c.value)
                                        .order_by(stream_log.c.position)).all()
            assert wait_until(lambda: len(rows()) >= count, timeout=20)
            # the table keeps key and value: the headers are the Kafka adapter's, the same for every message
            return [SimpleNamespace(key=key, value=value, headers=[]) for key, value in rows()]
        return settings, messages
    servers, topic = request.getfixturevalue("kafka"), request.getfixturevalue("topic")
    settings = CaseSettings(database_url=request.getfixturevalue("database_url"), kafka_bootstrap_servers=servers,
                            kafka_topic=topic, kafka_topic_partitions=1, data_dir=tmp_path)

    def messages(count: int) -> list:
        consumer = KafkaConsumer(topic, bootstrap_servers=servers, auto_offset_reset="earliest",
                                 enable_auto_commit=False)
        records, deadline = [], time.monotonic() + 30
        while len(records) < count and time.monotonic() < deadline:
            records += [r for batch in consumer.poll(timeout_ms=200).values() for r in batch]
        consumer.close()
        return records
    return settings, messages


def test_the_stream_carries_the_time_each_event_was_accepted_and_its_data_type(stream, serve):
    """Each message read by the README's snippet (the SDK's Kafka binding)."""
    settings, messages = stream
    namespace: dict = {}
    exec(readme_snippet("cloudevents-read"), namespace)  # noqa: S102 - the README's own code
    with serve(create_app(lambda: bootstrap(settings))) as client:
        before = datetime.now(UTC)
        assert client.post("/events", json=untimed(opened("timed-1"))).status_code == 201
        after = datetime.now(UTC)
        assert client.post("/events", json=benefit_started("timed-1")).status_code == 201  # time 2019-01-02T08:00Z
        received = messages(2)
        accepted, sent = [namespace["cloudevent"](record) for record in received]
        history = client.get("/cases/timed-1").json()["events"]
    assert "time" not in history[0]  # stored as posted: the case's history adds none
    recorded = datetime.fromisoformat(history[0]["recorded"])
    assert (accepted.get_type(), sent.get_type()) == ("dk.frisag.case.opened", "dk.frisag.benefit.started")
    assert before <= accepted.get_time() <= after and accepted.get_time() == recorded  # as the case's history says
    assert sent.get_time() == datetime(2019, 1, 2, 8, tzinfo=UTC)  # as posted
    assert accepted.get_datacontenttype() == sent.get_datacontenttype() == "application/json"
    assert sent.get_data() == {"benefit": "ledighedsydelse", "date": "2019-01-01"}
    assert [e.get_extension("sequence") for e in (accepted, sent)] == [1, 2]
    # what the SDK parsed is the message itself, not the SDK's defaults
    assert json.loads(received[0].value)["time"] == accepted.get_time().isoformat()
