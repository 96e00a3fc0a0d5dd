"""The schema migrations, for both consumers and the case service, on SQLite and PostgreSQL: from an
empty database, from an earlier revision with rows in it, from a database the previous release made
(its migrations at their head, its create_all of the data keys and audit logs), and from a database
create_all made before there were migrations. At head the database is what the services' metadata
describes, as create_all would make it."""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
import sqlalchemy.exc
from sqlalchemy import Engine, MetaData, create_engine, insert, inspect, select, text

from services.case import keys
from services.case.keys import DataKeys
from services.obligations.projection import ObligationsProjection
from services.obligations.projection import metadata as obligations_metadata
from services.reporting.store import ReportingStore
from services.reporting.store import metadata as reporting_metadata
from shared import fold_version
from shared.audit import AuditLog, audit_table
from shared.catalog import Catalog
from shared.migrations import AUDIT, config, upgrade, version_table
from shared.projection import service_metadata, store_tables
from tests.infra import fresh_database

SERVICES = ["obligations", "reporting"]
DERIVED: dict[str, MetaData] = {"obligations": obligations_metadata, "reporting": reporting_metadata}
PROJECTIONS = {"obligations": ObligationsProjection, "reporting": ReportingStore}
ALL = ["case", *SERVICES]
# every history: (service, history) -> the tables it makes, as the services' code describes them
TARGETS: dict[tuple[str, str | None], MetaData] = {
    ("case", None): keys.metadata,
    **{(service, None): service_metadata(service, DERIVED[service]) for service in SERVICES},
    **{(service, AUDIT): audit_table(service).metadata for service in ALL}}
REPOSITORY = Path(__file__).parents[2]
# main before the projections' histories were branched: what is deployed today
PREVIOUS_RELEASE = "9fbcd0b011211317b102835dcfccb099aa46fb99"
# what autogenerate finds missing (or too much) at revision 0001: migrations 0002 to 0005
SINCE_0001 = {"obligations": ["add_column", "add_column", "add_column", "add_index", "add_index", "add_index", "add_table",
                              "add_table"],
              "reporting": ["add_column", "add_column", "add_index", "add_index", "add_index", "add_table", "add_table",
                            "add_table", "remove_index", "remove_index", "remove_index", "remove_index"]}
DERIVED_SINCE_0001 = {  # the derived tables' changes after 0001, undone in what create_all made
    "obligations": ["ALTER TABLE obligations_responsibility DROP COLUMN folded_to",
                    "ALTER TABLE obligations_responsibility DROP COLUMN fold_version"],
    "reporting": ["ALTER TABLE reporting_responsibility DROP COLUMN fold_version", "DROP TABLE reporting_what_if",
                  *(f"CREATE INDEX ix_reporting_{table}_{column} ON reporting_{table} ({column})"
                    for table, column in [("citizens", "citizen"), ("obligations", "due"), ("spells", "benefit"),
                                          ("occurrences", "day")])]}


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'projection.sqlite'}"
    else:
        url = request.getfixturevalue("database_url").replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url)
    yield engine
    engine.dispose()


def differences(engine: Engine, service: str, history: str | None = None) -> list:
    """What autogenerate would change to make a history's tables match the code's metadata."""
    target = TARGETS[service, history]
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "version_table": version_table(service, history),
            "include_name": lambda name, type_, _: type_ != "table" or name in target.tables})
        return compare_metadata(context, target)


def revision(engine: Engine, service: str, history: str | None = None) -> set[str]:
    """The revisions the database is at, one per branch."""
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn, opts={"version_table": version_table(service, history)})
                   .get_current_heads())


def head(engine: Engine, service: str, history: str | None = None) -> set[str]:
    with engine.connect() as conn:
        return set(ScriptDirectory.from_config(config(service, conn, history)).get_heads())


def insert_rows(engine: Engine, service: str) -> dict[str, list[tuple]]:
    """A few rows in the store tables, as they read back ordered by primary key."""
    _, positions, case_events, cases, _ = store_tables(service)
    rows = {
        positions.name: [("group-a", 0, 17), ("group-a", 1, 4)],
        case_events.name: [("case-1", 1, "case.opened", {"date": "2019-01-01", "municipality": "851"}, None),
                           ("case-1", 2, "plan.updated", {"date": "2019-02-01"}, "T11"),
                           ("case-2", 1, "case.opened", {"date": "2019-03-01", "municipality": "751"}, None)],
        cases.name: [("case-1", 2, 3, 2), ("case-2", 1, 1, 1)],  # case-1 stale
    }
    with engine.begin() as conn:
        for table in (positions, case_events, cases):
            conn.execute(insert(table), [dict(zip(table.columns.keys(), row)) for row in rows[table.name]])
    return rows


def upgraded(rows: dict[str, list[tuple]], service: str) -> dict[str, list[tuple]]:
    """The rows as they read back after migration 0003: the cases at tick 0, the clock too."""
    return rows | {f"{service}_cases": [(*row, 0) for row in rows[f"{service}_cases"]], f"{service}_clock": [(1, 0, 0)]}


def stored_rows(engine: Engine, service: str) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {table.name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
                for table in store_tables(service)[1:]}


def refresh_uses_the_stale_index(engine: Engine, service: str) -> bool:
    query = f"SELECT case_id, version FROM {service}_cases WHERE version > derived_version LIMIT 10"
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL enable_seqscan = off"))  # the planner scans a tiny table otherwise
            plan = conn.execute(text(f"EXPLAIN {query}")).scalars().all()
        else:
            plan = [row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {query}"))]
    return any(f"ix_{service}_cases_stale" in line for line in plan)


@pytest.mark.integration
@pytest.mark.parametrize("service", SERVICES)
def test_an_empty_database_is_migrated_to_what_the_metadata_describes(service, engine):
    upgrade(engine, service)
    # two branches: the store tables, written once for both consumers, and the service's own
    assert sorted(r.split("_")[0] for r in head(engine, service)) == sorted(["projection", service])
    assert revision(engine, service) == head(engine, service)
    assert differences(engine, service) == []
    upgrade(engine, service)  # at head: nothing to do
    assert revision(engine, service) == head(engine, service)


@pytest.mark.integration
@pytest.mark.parametrize("service", SERVICES)
def test_rows_stored_at_an_earlier_revision_outlive_the_upgrade(service, engine):
    with engine.begin() as conn:
        command.upgrade(config(service, conn), "projection_0001")
        command.upgrade(config(service, conn), f"{service}_0001")
    assert sorted(d[0] if isinstance(d, tuple) else d[0][0] for d in differences(engine, service)) == SINCE_0001[service]
    rows = insert_rows(engine, service)

    upgrade(engine, service)

    assert revision(engine, service) == head(engine, service)
    assert stored_rows(engine, service) == upgraded(rows, service)
    stale_index, = [i for i in inspect(engine).get_indexes(f"{service}_cases") if i["name"] == f"ix_{service}_cases_stale"]
    assert stale_index["column_names"] == ["case_id"]
    where = stale_index["dialect_options"][f"{engine.dialect.name}_where"]
    assert "version > derived_version" in str(where)
    assert refresh_uses_the_stale_index(engine, service)
    counts = PROJECTIONS[service](engine, Catalog.load()).counts()
    assert (counts["cases"], counts["stale"]) == (2, 1)


@pytest.mark.integration
@pytest.mark.parametrize("service", SERVICES)
def test_a_database_create_all_made_is_stamped_and_upgraded_when_the_service_starts(service, engine):
    with engine.begin() as conn:  # what the services made before there were migrations
        service_metadata(service, DERIVED[service]).create_all(conn)
        for since_0001 in (f"DROP INDEX ix_{service}_cases_stale", f"DROP INDEX ix_{service}_cases_derived_tick",
                           f"ALTER TABLE {service}_cases DROP COLUMN derived_tick", f"DROP TABLE {service}_clock",
                           f"DROP TABLE {service}_failed_cases", *DERIVED_SINCE_0001[service]):
            conn.execute(text(since_0001))
    rows = insert_rows(engine, service)

    PROJECTIONS[service](engine, Catalog.load())  # stamps the initial revision, then upgrades

    assert revision(engine, service) == head(engine, service)
    assert differences(engine, service) == []
    assert stored_rows(engine, service) == upgraded(rows, service)


@pytest.mark.integration
def test_replicas_of_both_services_starting_together_on_one_database_do_not_race(database_url):
    env = os.environ | {"DATABASE_URL": database_url}
    commands = [subprocess.Popen([sys.executable, "-m", "services.admin", "migrate", service], env=env)
                for service in SERVICES * 3]
    assert [c.wait(timeout=60) for c in commands] == [0] * len(commands)
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    for service in SERVICES:
        assert revision(engine, service) == head(engine, service)
        assert differences(engine, service) == []
    engine.dispose()


@pytest.mark.integration
def test_the_command_migrates_the_embedded_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"DATA_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "services.admin", "migrate", "reporting"], env=env, check=True)
    engine = create_engine(f"sqlite:///{tmp_path / 'reporting.sqlite'}")
    assert revision(engine, "reporting") == head(engine, "reporting")
    assert differences(engine, "reporting") == []
    engine.dispose()


@pytest.mark.integration
def test_the_case_services_command_migrates_its_data_keys_and_audit_log(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"DATA_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "services.case.admin", "migrate"], env=env, check=True)
    for sqlite_file, history in (("case_keys.sqlite", None), ("audit.sqlite", AUDIT)):
        engine = create_engine(f"sqlite:///{tmp_path / sqlite_file}")
        assert revision(engine, "case", history) == head(engine, "case", history)
        assert differences(engine, "case", history) == []
        engine.dispose()


@pytest.mark.integration
@pytest.mark.parametrize("service", SERVICES)
def test_a_new_fold_version_has_every_case_derived_again_when_the_service_starts(service, engine, monkeypatch):
    upgrade(engine, service)
    insert_rows(engine, service)
    stale = lambda projection: projection.counts()["stale"]
    projection = PROJECTIONS[service](engine, Catalog.load())
    projection.mark_stale()
    projection.refresh()
    assert stale(PROJECTIONS[service](engine, Catalog.load())) == 0  # the same version: nothing to do
    monkeypatch.setattr(fold_version, "FOLD_VERSION", fold_version.FOLD_VERSION + 1)
    projection = PROJECTIONS[service](engine, Catalog.load())  # a service of the new version starts
    assert stale(projection) == 2
    projection.refresh()
    assert stale(projection) == 0
    # a pod of the old version derives a case again during the roll: marked at the next look
    monkeypatch.setattr(fold_version, "RECHECK", 0.0)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {service}_responsibility SET fold_version = 1 WHERE case_id = 'case-2'"))
    assert projection.refresh_marks() == 1


def made_by_the_previous_release(url: str, tmp_path: Path) -> None:
    """What the previous release's services made in a database when they started: its code,
    checked out of git, run in a process of its own."""
    tree = tmp_path / "previous"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", PREVIOUS_RELEASE, "shared", "services"], cwd=REPOSITORY,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    start = """if True:
        import sys
        from sqlalchemy import create_engine
        from services.case.keys import metadata
        from services.obligations.projection import ObligationsProjection
        from services.reporting.store import ReportingStore
        from shared.audit import AuditLog
        from shared.catalog import Catalog
        engine = create_engine(sys.argv[1])
        ObligationsProjection(engine, Catalog.load())  # migrated to its head, 0005
        ReportingStore(engine, Catalog.load())
        metadata.create_all(engine)  # as DataKeys did
        for service in ("case", "obligations", "reporting"):
            AuditLog(engine, service)
        assert "previous" in sys.modules["shared.audit"].__file__  # its code, not this one's
    """
    subprocess.run([sys.executable, "-c", start, url], cwd=tree, env=os.environ | {"PYTHONPATH": str(tree)},
                   check=True)


def audit_record(service: str) -> dict:
    return {"at": datetime(2026, 12, 1, tzinfo=UTC), "subject": "anna", "roles": ["caseworker"],
            "action": "read case history", "method": "GET", "path": f"/{service}", "query": "", "case_id": "case-1",
            "status": 200, "client": "10.0.0.1"}


@pytest.mark.integration
def test_a_database_the_previous_release_made_is_upgraded_by_every_service(engine, tmp_path):
    made_by_the_previous_release(engine.url.render_as_string(hide_password=False), tmp_path)
    with engine.connect() as conn:  # the previous release's histories: one line each, at 0005
        for service in SERVICES:
            assert conn.execute(text(f"SELECT version_num FROM {service}_alembic_version")).scalars().all() == ["0005"]
    rows = {service: insert_rows(engine, service) for service in SERVICES}
    with engine.begin() as conn:
        for service in ALL:
            conn.execute(insert(audit_table(service)), audit_record(service))
        conn.execute(insert(keys.data_keys), {"case_uuid": UUID(int=1), "wrapped_key": b"wrapped", "closed_on": None})

    for service in SERVICES:  # each service as it starts
        PROJECTIONS[service](engine, Catalog.load())
    for service in ALL:
        AuditLog(engine, service)
    DataKeys(engine, store_cipher=None)

    for service, history in TARGETS:
        assert revision(engine, service, history) == head(engine, service, history), (service, history)
        assert differences(engine, service, history) == [], (service, history)
    for service in SERVICES:
        assert stored_rows(engine, service) == upgraded(rows[service], service)
    with engine.connect() as conn:
        assert conn.execute(select(keys.data_keys.c.case_uuid, keys.data_keys.c.wrapped_key)).all() == \
            [(UUID(int=1), b"wrapped")]
    for service in ALL:  # still append-only, and appended to
        log = AuditLog(engine, service)
        log.append(audit_record(service))
        assert [r["path"] for r in log.query()] == [f"/{service}"] * 2
        with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {service}_audit"))
    if engine.dialect.name == "postgresql":  # each log's guard is its service's own function now
        assert append_only_functions(engine) == {f"{s}_audit": f"{s}_append_only" for s in ALL}


def append_only_functions(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT c.relname, p.proname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal")).all())


def schema(engine: Engine) -> dict[str, dict]:
    """Every table as SQLAlchemy inspects it (the version tables aside)."""
    found = inspect(engine)
    return {table: {
        "columns": [(c["name"], str(c["type"]), c["nullable"], c["default"], c["autoincrement"])
                    for c in found.get_columns(table)],
        "primary key": found.get_pk_constraint(table),
        "indexes": sorted((i["name"], i["column_names"], i["unique"], str(i.get("dialect_options")))
                          for i in found.get_indexes(table)),
        "unique": sorted(str(u) for u in found.get_unique_constraints(table)),
        "foreign keys": sorted(str(f) for f in found.get_foreign_keys(table)),
        "checks": sorted(str(c) for c in found.get_check_constraints(table)),
    } for table in found.get_table_names() if not table.endswith("alembic_version")}


@pytest.mark.integration
def test_a_fresh_database_migrated_to_head_has_the_schema_create_all_gives(database_url, pg_admin):
    migrated = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    for service, history in TARGETS:
        upgrade(migrated, service, history)
    with fresh_database(pg_admin) as url:
        created = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        for target in TARGETS.values():
            target.create_all(created)
        expected = schema(created)
        created.dispose()
    found = schema(migrated)
    # 3 audit logs, the data keys, and each consumer's 5 store tables with its derived ones (2; 5 and the what-ifs)
    assert len(found) == 3 + 1 + (5 + 2) + (5 + 5 + 1)
    assert sorted(found) == sorted(expected)
    for table in expected:
        assert found[table] == expected[table], table
    assert append_only_functions(migrated) == {f"{s}_audit": f"{s}_append_only" for s in ALL}
    migrated.dispose()


@pytest.mark.integration
def test_case_services_and_relays_starting_together_on_one_database_do_not_race(database_url):
    """The event store's tables (eventsourcing's, made when first used) and the relay's tracking
    table: several processes making them at once on an empty database all start."""
    env = os.environ | {"DATABASE_URL": database_url}
    start = ("from services.case.bootstrap import build_cases; from services.case.settings import CaseSettings; "
             "cases = build_cases(CaseSettings()); cases.factory.tracking_recorder(); cases.close()")
    commands = [subprocess.Popen([sys.executable, "-c", start], env=env, stderr=subprocess.PIPE) for _ in range(6)]
    finished = [(c.wait(timeout=60), c.stderr.read().decode()[-300:]) for c in commands]
    assert [code for code, _ in finished] == [0] * len(commands), finished
