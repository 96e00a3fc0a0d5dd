"""Erasure (crypto-shredding) and retention: an erased case's events can no longer be decrypted,
the projections drop it, the evaluation numbers stay the same; nothing is accepted for it
afterwards, on any replica; cases are erased by themselves once their retention has run out."""

import base64
import json
import time
from collections.abc import Iterator
from datetime import date, timedelta
from itertools import islice

import pytest
from eventsourcing.cryptography import AESCipher
from kafka import KafkaConsumer
from sqlalchemy import create_engine, text

from services.case import keys
from services.case.api import create_app as case_app
from services.case.bootstrap import build_cases
from services.case.cases import Cases
from services.case.domain import Case, CaseErased
from services.case.erasure import erase, sweep
from services.case.history import history
from services.case.ingest import Ingest
from services.case.problems import problem_for
from services.case.settings import CaseSettings
from services.case.stream_events import stream_events
from services.obligations.api import create_app as obligations_app
from services.obligations.settings import ObligationsSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from shared import cpr as cpr_numbers
from shared.events import parse_event
from shared.population import Population
from shared.settings import DEV_CASE_STORE_KEY, DEV_PSEUDONYM_KEY
from tests.events import event, opened
from tests.infra import is_problem, wait_until

BATCH = {"content-type": "application/cloudevents-batch+json"}
PERIOD = {"from": "2019-01-01", "to": "2022-12-31"}


@pytest.fixture
def embedded(tmp_path) -> Iterator[tuple[Cases, Ingest]]:
    """A case store on SQLite and its ingest."""
    cases = build_cases(CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path))
    ingest = Ingest(cases)
    yield cases, ingest
    ingest.close()
    cases.close()


def batches(documents: list[dict], size: int = 4000):
    it = iter(documents)
    while chunk := list(islice(it, size)):
        yield chunk


@pytest.mark.slow
def test_an_erased_case_cannot_be_read_is_dropped_and_the_numbers_stay(database_url, kafka, topic, tmp_path, serve):
    common = {"database_url": database_url, "kafka_bootstrap_servers": kafka, "kafka_topic": topic,
              "kafka_topic_partitions": 3, "kafka_session_timeout_ms": 6000, "data_dir": tmp_path}
    population = list(Population(seed=11).cases(300))
    closed = [c for c in population if c[-1]["type"] == "dk.frisag.case.closed"]
    still_open = [c for c in population if c[-1]["type"] != "dk.frisag.case.closed"]
    in_trial = [c for c in closed if c[0]["data"]["municipality"] == "851"][:3]
    victims = [c[0]["subject"] for c in [*in_trial, closed[0], still_open[0]]]
    cprs = {c[0]["subject"]: c[0]["data"]["cpr"] for c in population}

    with serve(case_app(settings=CaseSettings(**common))) as case, \
            serve(obligations_app(settings=ObligationsSettings(**common, refold_workers=0,
                                                              consumer_group=f"obligations-{topic}"))) as obligations, \
            serve(reporting_app(settings=ReportingSettings(**common, refold_workers=0,
                                                          reporting_group=f"reporting-{topic}"))) as reporting:
        for chunk in batches([e for c in population for e in c]):
            assert case.post("/events", json=chunk, headers=BATCH).status_code == 201

        def caught_up(client, cases: int) -> bool:
            status = client.get("/status").json()
            return status["cases"] == cases and status["stale"] == 0

        assert wait_until(lambda: caught_up(obligations, 300) and caught_up(reporting, 300), timeout=120)
        assert obligations.get(f"/cases/{victims[0]}/obligations", params={"as_of": "2021-01-01"}).status_code == 200
        evaluations = {t: reporting.get(f"/trials/{t}/evaluation", params=PERIOD).json() for t in ("T11", "T19")}
        assert any(r["metric"] == "did_estimate" and r["ci95"] for r in evaluations["T11"]["rows"])

        for victim in victims:
            erasure = case.post(f"/cases/{victim}/erasure")
            assert erasure.status_code == 200, erasure.text
            assert erasure.json()["case_id"] == victim and erasure.json()["reason"] == "request"
            assert case.post(f"/cases/{victim}/erasure").json() == erasure.json()  # again: the same erasure
        is_problem(case.post("/cases/no-such-case/erasure"), 404)

        # the case service: nothing of the case can be read, nothing more accepted
        is_problem(case.get(f"/cases/{victims[0]}"), 410)
        late = event("conversation.held", victims[0], kind="jobsamtale", date="2020-02-01")
        refused = case.post("/events", json=late)
        assert is_problem(refused, 410)["errors"][0]["field"] == "subject"
        audit = case.get("/audit", params={"action": "erase case"}).json()["records"]
        assert {r["case_id"] for r in audit} == set(victims) | {"no-such-case"}

        # the projections drop the case; the reporting numbers stay exactly as they were
        engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))

        def count(sql: str, **params) -> int:
            with engine.connect() as conn:
                return conn.execute(text(sql), params).scalar()

        def dropped() -> bool:
            return (count("SELECT count(*) FROM obligations_case_events WHERE case_id = ANY(:v)", v=victims) == 0
                    and count("SELECT count(*) FROM reporting_case_events WHERE case_id = ANY(:v)", v=victims) == 0
                    and caught_up(obligations, 300) and caught_up(reporting, 300))

        assert wait_until(dropped, timeout=60)
        for victim in victims:
            is_problem(obligations.get(f"/cases/{victim}/obligations", params={"as_of": "2021-01-01"}), 410)
        assert count("SELECT count(*) FROM obligations WHERE case_id = ANY(:v)", v=victims) == 0
        assert count("SELECT count(*) FROM obligations_responsibility WHERE case_id = ANY(:v)", v=victims) == 0
        pseudonyms = [cpr_numbers.pseudonym(cprs[v], DEV_PSEUDONYM_KEY.encode()) for v in victims]
        assert count("SELECT count(*) FROM reporting_citizens WHERE case_id = ANY(:v) OR citizen = ANY(:p)",
                     v=victims, p=pseudonyms) == 0
        for table in ("reporting_responsibility", "reporting_obligations", "reporting_spells", "reporting_occurrences"):
            assert count(f"SELECT count(*) FROM {table} WHERE case_id = ANY(:v)", v=victims) == 0
        kept = count("SELECT count(DISTINCT case_id) FROM reporting_citizens WHERE case_id LIKE 'erased-%'")
        assert kept == len(victims)
        for trial, before in evaluations.items():
            assert reporting.get(f"/trials/{trial}/evaluation", params=PERIOD).json() == before

        # the stored events: the case's key is gone, and the store key does not open them
        store_cipher = AESCipher({"CIPHER_KEY": DEV_CASE_STORE_KEY})
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM case_data_keys WHERE case_uuid = ANY(:u) "
                                     "AND wrapped_key IS NULL AND erased_at IS NOT NULL"),
                                {"u": [Case.create_id(v) for v in victims]}).scalar() == len(victims)
            rows = conn.execute(text("SELECT topic, state FROM cases_events WHERE originator_id = :u"),
                                {"u": Case.create_id(victims[0])}).all()
        assert len(rows) == len(next(c for c in population if c[0]["subject"] == victims[0])) + 1
        for topic_, state in rows:
            if topic_.endswith("Case.Erased"):
                assert b"dk.frisag.case.erased" in store_cipher.decrypt(bytes(state))
            else:
                with pytest.raises(ValueError, match="Invalid cipher tag"):
                    store_cipher.decrypt(bytes(state))
        engine.dispose()

    fresh = build_cases(CaseSettings(**{**common, "kafka_bootstrap_servers": None}))
    try:
        with pytest.raises(CaseErased) as gone:
            history(fresh, victims[0])
        assert problem_for(gone.value).status == 410
        assert history(fresh, still_open[1][0]["subject"])[0]["data"]["cpr"].endswith("-****")  # the others stay
    finally:
        fresh.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000)
    erased = {m.key.decode() for m in consumer if json.loads(m.value)["type"] == "dk.frisag.case.erased"}
    consumer.close()
    assert erased == set(victims)


def test_the_stream_leaves_out_what_it_can_no_longer_read(embedded):
    """The relay and the embedded stream read the log; events of a case erased before they were
    read are skipped, also a whole batch of them, and its erasure comes through."""
    cases, ingest = embedded
    documents = [opened("gone"), *[event("conversation.held", "gone", kind="jobsamtale", date=f"2019-0{m}-01")
                                   for m in range(2, 8)], opened("kept")]
    ingest.submit([parse_event(d) for d in documents]).result()
    erase(cases, "gone", "request", date(2026, 1, 1))
    # positions 1-7 are the erased case's, 8 the other case's opening, 9 the erasure
    assert [(e.name, e.subject, e.position) for e in stream_events(cases, 0, 3)] == [
        ("case.opened", "kept", 8), ("case.erased", "gone", 9)]
    assert stream_events(cases, 9, 3) == []


class OneMinuteLater:
    @staticmethod
    def monotonic() -> float:
        return time.monotonic() + keys.DataKeys.CACHE_SECONDS + 1


def test_no_replica_accepts_an_event_for_a_case_another_one_erased(database_url, tmp_path, monkeypatch):
    settings = CaseSettings(database_url=database_url, kafka_bootstrap_servers=None, data_dir=tmp_path)
    first, second = build_cases(settings), build_cases(settings)
    ingests = [Ingest(first), Ingest(second)]
    try:
        ingests[0].submit([parse_event(opened("c-1"))]).result()
        assert history(second, "c-1") and second.get_case("c-1") is not None  # cached there: case and key
        # more cases at once than PostgreSQL takes parameters in one statement
        assert len(second.unknown({f"new-{i}" for i in range(70_000)} | {"c-1"})) == 70_000
        erase(first, "c-1", "request", date(2026, 1, 1))
        late = ingests[1].submit([parse_event(event("conversation.held", "c-1", kind="jobsamtale", date="2019-02-01"))])
        assert problem_for(late.exception(timeout=10)).status == 410
        monkeypatch.setattr(keys, "time", OneMinuteLater)  # the cached key has expired
        with pytest.raises(CaseErased) as gone:
            history(second, "c-1")
        assert problem_for(gone.value).status == 410
    finally:
        for ingest in ingests:
            ingest.close()
        first.close()
        second.close()


def test_cases_are_erased_once_their_retention_has_run_out(tmp_path, serve):
    recently = (date.today() - timedelta(days=30)).isoformat()
    settings = CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path,
                            retention_after_close_days=365, retention_sweep_seconds=0.2)
    with serve(case_app(settings=settings)) as case:
        documents = [opened("old"), event("case.closed", "old", date="2020-03-01", reason="job"),
                     opened("recent"), event("case.closed", "recent", date=recently, reason="job"),
                     opened("open")]
        assert case.post("/events", json=documents, headers=BATCH).status_code == 201
        assert wait_until(lambda: case.get("/cases/old").status_code == 410, timeout=20)
        assert case.get("/cases/recent").status_code == 200 and case.get("/cases/open").status_code == 200
        store = build_cases(settings.model_copy(update={"kafka_bootstrap_servers": None}))
        try:
            erasure = stream_events(store, 0, 100)[-1]
        finally:
            store.close()
        assert (erasure.name, erasure.subject, erasure.data["reason"]) == ("case.erased", "old", "retention")


def test_a_closing_date_beside_the_key_that_the_case_does_not_have_erases_nothing(embedded):
    # the date is written before the closing event is stored: a close that never got stored
    # must not erase an open case
    cases, ingest = embedded
    ingest.submit([parse_event(opened("c-1"))]).result()
    with cases.keys.engine.begin() as conn:
        conn.execute(text("UPDATE case_data_keys SET closed_on = '2019-06-01'"))
    assert sweep(cases, 30, date(2026, 1, 1)) == 0
    assert cases.get_case("c-1").erased_on is None


def test_an_erasure_cut_off_before_the_key_went_is_refused_to_readers_and_finished_by_the_sweep(embedded):
    cases, ingest = embedded
    ingest.submit([parse_event(opened("c-1")), parse_event(opened("c-2"))]).result()
    case_uuid = Case.create_id("c-1")
    case = cases.stored(case_uuid)  # the erasure's first steps, then the process "dies"
    cases.keys.begin_erasure(case_uuid, "request")
    case.erase(date(2026, 1, 1), "request")
    cases.save(case)
    with pytest.raises(CaseErased) as gone:
        history(cases, "c-1")
    assert problem_for(gone.value).status == 410
    assert sweep(cases, 0, date(2026, 1, 2)) == 1  # no retention period: it only finishes erasures
    assert erase(cases, "c-1", "request", date(2026, 1, 3))["erased_on"] == "2026-01-01"
    with cases.keys.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_data_keys WHERE wrapped_key IS NULL")).scalar() == 1
    assert sweep(cases, 0, date(2026, 1, 2)) == 0 and history(cases, "c-2")


def test_the_earliest_closing_date_posted_stays_beside_the_key(tmp_path):
    cases = build_cases(CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path))
    try:
        case = Case.open(parse_event(opened("c-1")))
        cases.save(case)
        for day in ("2020-05-01", "2020-03-01", "2020-04-01"):  # as replicas with stale copies might
            case.closed_on = day
            cases.keys.prepare([case])
        with cases.keys.engine.connect() as conn:
            assert str(conn.execute(text("SELECT closed_on FROM case_data_keys")).scalar()) == "2020-03-01"
    finally:
        cases.close()


def test_keys_are_wrapped_under_the_store_key(tmp_path):
    cases = build_cases(CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path))
    try:
        case = Case.open(parse_event(opened("c-1")))
        cases.save(case)
        with cases.keys.engine.connect() as conn:
            wrapped = conn.execute(text("SELECT wrapped_key FROM case_data_keys")).scalar()
        key = AESCipher({"CIPHER_KEY": DEV_CASE_STORE_KEY}).decrypt(wrapped)
        assert len(key) == 32 and key not in wrapped and base64.b64encode(key) not in wrapped
    finally:
        cases.close()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_an_erased_key_leaves_the_table_files_by_the_next_sweep(store, request, tmp_path):
    # the database keeps an overwritten row's old version in its files; the sweep makes sure
    # the erased (wrapped) key is not among them
    database_url = request.getfixturevalue("database_url") if store == "postgres" else None
    cases = build_cases(CaseSettings(database_url=database_url, kafka_bootstrap_servers=None, data_dir=tmp_path))
    ingest = Ingest(cases)
    try:
        for n in range(30):  # the victim last: its row lies where VACUUM alone leaves the bytes
            ingest.submit([parse_event(opened(f"c-{n}"))]).result()
        victim = Case.create_id("c-29")
        with cases.keys.engine.connect() as conn:
            wrapped = conn.execute(text("SELECT wrapped_key FROM case_data_keys WHERE case_uuid = :u"),
                                   {"u": victim if store == "postgres" else victim.hex}).scalar()
        erase(cases, "c-29", "request", date(2026, 1, 1))
        sweep(cases, 0, date(2026, 1, 1))
        # a transaction older than the erasure (here: other tests' databases being created)
        # keeps the old rows through a sweep's VACUUM FULL: a later sweep removes them
        assert wait_until(cases.keys.scrub, timeout=60)
        files = table_files(cases.keys.engine, tmp_path)
        assert wrapped[:16] not in files
        assert history(cases, "c-0")  # the others keep theirs
    finally:
        ingest.close()
        cases.close()


def table_files(engine, data_dir) -> bytes:
    """Every byte of the key table as the database holds it: its pages (PostgreSQL, read with
    pageinspect), or the database file (SQLite)."""
    if engine.dialect.name == "sqlite":
        return (data_dir / "case_keys.sqlite").read_bytes()
    with engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
        pages = conn.execute(text("SELECT get_raw_page('case_data_keys', n::int) FROM generate_series(0, "
                                  "pg_relation_size('case_data_keys') / current_setting('block_size')::int - 1) n"))
        return b"".join(bytes(page) for page, in pages)
