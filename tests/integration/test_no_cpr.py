"""CPR numbers stay in the case store, encrypted: after events went through the case service,
the relay, the stream (the real broker on PostgreSQL; the embedded stream's table on SQLite) and
both consumers, no message and no row of any table (the case store's included: its events are
encrypted at rest) holds a CPR number, with or without its dash."""

import re

import pytest
from kafka import KafkaConsumer
from sqlalchemy import column, create_engine, func, inspect, select, table

from services.case.api import create_app as case_app
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.settings import ObligationsSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from tests.events import benefit_started, event, opened
from tests.infra import wait_until

CPRS = [f"{day:02d}0{month}8{year}-{serial:04d}" for day, month, year, serial in
        ((1, 1, 0, 1234), (15, 3, 5, 4321), (28, 2, 9, 1017), (7, 7, 1, 2222), (30, 9, 3, 3871))]
BATCH = {"content-type": "application/cloudevents-batch+json"}


def found_in(text: str) -> list[str]:
    return [cpr for cpr in CPRS if cpr in text or cpr.replace("-", "") in text]


def post_through_the_three_services(common: dict, topic: str, serve) -> list[dict]:
    """The documents posted to the case service, once both consumers have derived every case."""
    documents = []
    for i, cpr in enumerate(CPRS):
        documents += [opened(f"c-{i}", cpr=cpr, municipality="851"), benefit_started(f"c-{i}", benefit="dagpenge"),
                      event("conversation.held", f"c-{i}", kind="jobsamtale", date="2019-02-01")]
    with serve(case_app(settings=CaseSettings(**common))) as case, \
            serve(obligations_app(settings=ObligationsSettings(**common, refold_workers=0,
                                                              consumer_group=f"obligations-{topic}"))) as obligations, \
            serve(reporting_app(settings=ReportingSettings(**common, refold_workers=0,
                                                          reporting_group=f"reporting-{topic}"))) as reporting:
        assert case.post("/events", json=documents, headers=BATCH).status_code == 201
        # through the side doors: free text and a case id holding one are refused, not stored
        side_doors = [event("rehab-team.meeting-held", "c-0", recommendation=f"borger {CPRS[1]} anbefales ressourceforløb",
                            date="2019-03-01"), opened(CPRS[2], cpr=CPRS[2])]
        for document in side_doors:
            assert case.post("/events", json=document).status_code == 422
        for client in (obligations, reporting):
            assert wait_until(lambda: client.get("/status").json()["cases"] == len(CPRS)
                              and client.get("/status").json()["stale"] == 0, timeout=60)
        history = case.get("/cases/c-0").json()
        assert history["events"][0]["data"]["cpr"] == "010180-****"  # what the API shows: masked
        assert found_in(case.get("/audit").text) == []
    return documents


def scan(engine) -> tuple[set[str], int]:
    """Every row of every table: (the tables, how many rows), asserting none holds a CPR number."""
    tables = inspect(engine).get_table_names()
    rows = 0
    with engine.connect() as conn:
        for name in tables:
            columns = [column(c["name"]) for c in inspect(engine).get_columns(name)]
            for row in conn.execute(select(*columns).select_from(table(name, *columns))):
                rows += 1
                text = " ".join(bytes(v).decode("latin-1") if isinstance(v, (bytes, memoryview)) else str(v)
                                for v in row)
                assert found_in(text) == [], (name, row)
    return set(tables), rows


@pytest.mark.slow
def test_no_cpr_number_on_the_stream_or_in_any_store(database_url, kafka, topic, tmp_path, serve):
    common = {"database_url": database_url, "kafka_bootstrap_servers": kafka, "kafka_topic": topic,
              "kafka_topic_partitions": 2, "kafka_session_timeout_ms": 6000, "data_dir": tmp_path}
    documents = post_through_the_three_services(common, topic, serve)

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000)
    messages = list(consumer)
    consumer.close()
    assert len(messages) == len(documents)
    for m in messages:
        everything = (m.key or b"") + m.value + b"".join(name.encode() + value for name, value in m.headers)
        assert found_in(everything.decode("latin-1")) == [], m
    assert b'"citizen":' in messages[0].value or any(b'"citizen":' in m.value for m in messages)

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    tables, rows = scan(engine)
    assert {"cases_events", "obligations", "reporting_cases", "case_audit", "obligations_audit"} <= tables
    assert rows > 50
    engine.dispose()


def test_no_cpr_number_on_the_embedded_stream_or_in_any_sqlite_file(tmp_path, serve):
    """`make run`'s path: the relay publishes to the embedded stream's table, which the consumers
    read; every SQLite file the three services made is scanned, the stream's included."""
    common = {"database_url": None, "kafka_bootstrap_servers": None, "data_dir": tmp_path}
    documents = post_through_the_three_services(common, "embedded", serve)
    found, stream_rows = set(), 0
    for path in sorted(tmp_path.glob("*.sqlite")):
        engine = create_engine(f"sqlite:///{path}")
        tables, rows = scan(engine)
        found |= tables
        if "stream_log" in tables:
            with engine.connect() as conn:
                stream_rows = conn.execute(select(func.count()).select_from(table("stream_log"))).scalar()
                values = conn.execute(select(column("value")).select_from(table("stream_log"))).scalars().all()
            assert any(b'"citizen":' in v for v in values) and b'"cpr"' not in b"".join(values)
        engine.dispose()
    assert {"stored_events", "stream_log", "obligations", "reporting_cases", "case_audit", "obligations_audit"} <= found
    assert stream_rows == len(documents)  # the consumers read the stream, which holds every event


def test_the_cpr_pattern_would_be_found():
    # the scan above is only as good as its matcher
    assert found_in("x 010180-1234 y") == ["010180-1234"] and found_in("0101801234") == ["010180-1234"]
    assert re.fullmatch(r"\d{6}-\d{4}", CPRS[1])
