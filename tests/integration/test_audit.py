"""The audit log on PostgreSQL: every read of a case's data and every admin action, refusals
included, with who, what, when and from where; queryable by admin only; append-only."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy.exc
from sqlalchemy import create_engine, delete, text, update

from services.case.api import create_app as case_app
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.settings import ObligationsSettings
from shared.audit import AuditLog
from shared.auth import ADMIN, CASEWORKER, INTEGRATION
from tests.events import benefit_started, opened
from tests.infra import bearer, wait_until

SINGLE = {"content-type": "application/cloudevents+json"}


def test_reads_and_admin_actions_are_recorded_and_only_admin_reads_them(database_url, tmp_path, serve, issuer):
    common = {"database_url": database_url, "kafka_bootstrap_servers": None, "data_dir": tmp_path}
    integration = bearer(issuer.token(INTEGRATION, municipalities=["851", "751"], subject="momentum"))
    worker = bearer(issuer.token(CASEWORKER, municipalities=["851"], subject="anna@aalborg"))
    admin = bearer(issuer.token(ADMIN, subject="root@frisag"))
    started = datetime.now(UTC) - timedelta(seconds=1)
    with serve(case_app(settings=CaseSettings(**common)), token=None) as case, \
            serve(obligations_app(settings=ObligationsSettings(**common, refold_workers=0)), token=None) as obligations:
        for c, municipality in (("c-aal", "851"), ("c-aar", "751")):
            for document in (opened(c, municipality=municipality), benefit_started(c, benefit="dagpenge")):
                assert case.post("/events", json=document, headers={**SINGLE, **integration}).status_code == 201
        assert wait_until(lambda: obligations.get("/status", headers=admin).json()["cases"] == 2, timeout=30)

        assert obligations.get("/cases/c-aal/obligations", headers=worker).status_code == 200
        assert obligations.get("/cases/c-aar/obligations", headers=worker).status_code == 403
        assert obligations.get("/obligations", params={"as_of": "2019-06-01"}, headers=worker).status_code == 200
        assert obligations.get("/cases/c-aal/obligations", headers=bearer("forged")).status_code == 401
        assert obligations.post("/catalog/reload", headers=admin).status_code == 202
        assert obligations.get("/audit", headers=worker).status_code == 403
        assert case.get("/cases/c-aal", headers=worker).status_code == 200

        records = obligations.get("/audit", headers=admin).json()["records"]
        assert [(r["action"], r["subject"], r["case_id"], r["status"]) for r in records] == [
            ("read case obligations", "anna@aalborg", "c-aal", 200),
            ("read case obligations", "anna@aalborg", "c-aar", 403),
            ("read worklist", "anna@aalborg", None, 200),
            ("read case obligations", None, "c-aal", 401),  # no valid token: nobody known
            ("reload catalog", "root@frisag", None, 202),
            ("read audit log", "anna@aalborg", None, 403),
        ]
        first = records[0]
        assert first["roles"] == ["caseworker"] and first["client"] == "127.0.0.1"
        assert first["method"] == "GET" and first["path"] == "/cases/c-aal/obligations"
        assert started <= datetime.fromisoformat(first["at"]) <= datetime.now(UTC)
        assert records[2]["query"] == "as_of=2019-06-01"

        # filtered and paged; and reading it is itself recorded
        by_case = obligations.get("/audit", params={"case_id": "c-aar"}, headers=admin).json()["records"]
        assert [r["status"] for r in by_case] == [403]
        page = obligations.get("/audit", params={"limit": 2}, headers=admin).json()
        assert [r["id"] for r in page["records"]] == [r["id"] for r in records[:2]]
        rest = obligations.get("/audit", params={"after": page["next_after"], "subject": "root@frisag"},
                               headers=admin).json()["records"]
        assert [r["action"] for r in rest] == ["reload catalog", "read audit log", "read audit log", "read audit log"]
        # the latest first, as an operator's page lists them: every record so far, newest first
        latest = obligations.get("/audit", params={"order": "newest", "limit": 3}, headers=admin).json()
        everything = obligations.get("/audit", params={"limit": 1000}, headers=admin).json()["records"]
        assert [r["id"] for r in latest["records"]] == [r["id"] for r in everything[-2:-5:-1]]  # those before this read
        assert latest["next_after"] is None

        (history,) = case.get("/audit", headers=admin).json()["records"]  # the case service keeps its own
        assert (history["action"], history["subject"], history["case_id"]) == ("read case history", "anna@aalborg",
                                                                                "c-aal")


@pytest.mark.parametrize("engine_of", ["sqlite", "postgres"])
def test_the_log_refuses_changes_and_deletions(engine_of, database_url, tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}" if engine_of == "sqlite" else \
        database_url.replace("postgresql://", "postgresql+psycopg://")
    log = AuditLog(create_engine(url), "case")
    log.append({"at": datetime.now(UTC), "action": "read case history", "status": 200, "subject": "a", "roles": [],
                "method": "GET", "path": "/cases/c", "query": "", "case_id": "c", "client": "10.0.0.1"})
    AuditLog(log.engine, "case")  # a restart: the table and its guard are kept
    for change in (update(log.table).values(subject="someone else"), delete(log.table),
                   text("UPDATE case_audit SET status = 200")):
        with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"), log.engine.begin() as conn:
            conn.execute(change)
    assert [r["subject"] for r in log.query()] == ["a"]
    log.engine.dispose()


def test_every_text_field_is_stored_as_its_column_holds_it_never_a_failing_insert(database_url):
    """On PostgreSQL, where a string longer than its column fails the insert: each text field one
    character over its column (and with a NUL, which PostgreSQL text cannot hold) is clipped;
    a case id that is not a valid one (65 characters) is not kept as a case id at all."""
    log = AuditLog(create_engine(database_url.replace("postgresql://", "postgresql+psycopg://")), "case")
    lengths = {"subject": 256, "action": 64, "method": 8, "path": 512, "query": 1024, "client": 64}  # the columns
    overlong = {name: "\x00" + "x" * length for name, length in lengths.items()}
    log.append({"at": datetime.now(UTC), "status": 422, "roles": [], "case_id": "c" * 65, **overlong})
    log.append({"at": datetime.now(UTC), "status": 200, "roles": [], "case_id": "c" * 64, **overlong})
    first, second = log.query()
    for name, length in lengths.items():
        assert first[name] == ("%00" + "x" * length)[:length], name
    assert (first["case_id"], second["case_id"]) == (None, "c" * 64)
    log.engine.dispose()


def test_services_starting_together_on_a_new_database_all_get_their_log(database_url):
    """Each service migrates its log (with its own trigger function) when it starts; started
    together, as a deployment does, none may fail on the others' DDL."""
    engines = [create_engine(database_url.replace("postgresql://", "postgresql+psycopg://")) for _ in range(6)]
    start = threading.Barrier(len(engines))
    failures = []

    def create(n: int) -> None:
        start.wait()
        try:
            AuditLog(engines[n], f"service{n}")
        except sqlalchemy.exc.SQLAlchemyError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert not failures


def test_bad_input_is_recorded_as_it_came_and_never_fails_the_insert(database_url, tmp_path, serve, issuer):
    settings = CaseSettings(database_url=database_url, kafka_bootstrap_servers=None, data_dir=tmp_path)
    worker = bearer(issuer.token(CASEWORKER, municipalities=["851"], subject="anna@aalborg"))
    admin = bearer(issuer.token(ADMIN, subject="root@frisag"))
    long_id = "a" * 600
    with serve(case_app(settings=settings), token=None) as case:
        for path in ("/cases/%00", f"/cases/{long_id}", "/cases/c-1%00x"):
            assert case.get(path, headers=worker).status_code == 422
        # no such parameter (422), recorded as it came
        assert case.get("/cases/c-1", params={"x": "\x00" * 2000}, headers=worker).status_code == 422
        records = case.get("/audit", headers=admin).json()["records"]
    assert [(r["path"], r["case_id"], r["status"]) for r in records] == [
        ("/cases/%00", None, 422),  # NUL as in a URL; no case id where it is not a valid one
        (f"/cases/{long_id}"[:512], None, 422),  # clipped to the column
        ("/cases/c-1%00x", None, 422),
        ("/cases/c-1", "c-1", 422),
    ]
    assert records[3]["query"] == ("x=" + "%00" * 2000)[:1024]
