"""The projections' schema migrations, for both services, on SQLite and PostgreSQL: from an empty
database, from the previous revision with rows in it, and from a database create_all made before
there were migrations. At head the database is what the services' metadata describes."""

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, create_engine, insert, inspect, select, text

from services.obligations.projection import ObligationsProjection
from services.obligations.projection import metadata as obligations_metadata
from services.reporting.store import ReportingStore
from services.reporting.store import metadata as reporting_metadata
from shared import fold_version
from shared.catalog import Catalog
from shared.migrations import config, upgrade, version_table
from shared.projection import service_metadata, store_tables

SERVICES = ["obligations", "reporting"]
DERIVED: dict[str, MetaData] = {"obligations": obligations_metadata, "reporting": reporting_metadata}
PROJECTIONS = {"obligations": ObligationsProjection, "reporting": ReportingStore}
# what autogenerate finds missing at revision 0001: migrations 0002 to 0005
SINCE_0001 = {"obligations": ["add_column", "add_column", "add_column", "add_index", "add_index", "add_index", "add_table",
                              "add_table"],
              "reporting": ["add_column", "add_column", "add_index", "add_index", "add_index", "add_table", "add_table"]}
DERIVED_SINCE_0001 = {  # the derived tables' changes after 0001, undone in what create_all made
    "obligations": ["ALTER TABLE obligations_responsibility DROP COLUMN folded_to",
                    "ALTER TABLE obligations_responsibility DROP COLUMN fold_version"],
    "reporting": ["ALTER TABLE reporting_responsibility DROP COLUMN fold_version"]}


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'projection.sqlite'}"
    else:
        url = request.getfixturevalue("database_url").replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url)
    yield engine
    engine.dispose()


def differences(engine: Engine, service: str) -> list:
    """What autogenerate would change to make the service's tables match its metadata."""
    target = service_metadata(service, DERIVED[service])
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "version_table": version_table(service),
            "include_name": lambda name, type_, _: type_ != "table" or name in target.tables})
        return compare_metadata(context, target)


def revision(engine: Engine, service: str) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": version_table(service)}).get_current_revision()


def head(engine: Engine, service: str) -> str:
    with engine.connect() as conn:
        return ScriptDirectory.from_config(config(service, conn)).get_current_head()


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
    assert revision(engine, service) == head(engine, service)
    assert differences(engine, service) == []
    upgrade(engine, service)  # at head: nothing to do
    assert revision(engine, service) == head(engine, service)


@pytest.mark.integration
@pytest.mark.parametrize("service", SERVICES)
def test_rows_stored_at_an_earlier_revision_outlive_the_upgrade(service, engine):
    with engine.begin() as conn:
        command.upgrade(config(service, conn), "0001")
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
