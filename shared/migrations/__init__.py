"""Schema migrations (Alembic) of every table the services make themselves, on SQLite
(development) as on PostgreSQL: nothing calls `create_all` on them. Aside: the event store's
tables, which the `eventsourcing` library makes (with `cases_event_keys` beside them), and the
embedded stream's `stream_log` (development only: production reads Kafka).

A history has its own version table, so services may share a database or use separate ones:

- a service's own history, `<service>_alembic_version`, scripts in services/<service>/migrations:
  the case service's `case_data_keys`; each consumer's derived tables. The consumers' history
  also holds the branch `projection`, the store tables every projection keeps
  (`shared.projection.store_tables`), written once in shared/migrations/projection and run for
  each consumer with its prefix (`prefix()` in a script).
- the audit log's, `<service>_audit_alembic_version`, scripts in shared/migrations/audit, run for
  each service with its name.

The services migrate when they start; by hand: `python -m services.admin migrate obligations`
(or `reporting`), `python -m services.case.admin migrate`. A new revision of a branch, from a
database at head: `command.revision(config("obligations", conn), "what", head="projection@head",
rev_id="projection_0005", version_path=<that branch's folder>, autogenerate=True)`; in a shared
script, write the table names with `prefix()` instead of the service's name autogenerate put.
"""

import threading
import zlib

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, inspect, text

PROJECTION = "projection"  # the branch of the store tables, in each consumer's history
CONSUMERS = ("obligations", "reporting")  # the services that keep a projection
AUDIT = "audit"
_one_at_a_time = threading.Lock()  # Alembic's `context` is one per process

# Before the branches, each consumer had one linear history of its own, 0001 to 0005: where each
# of its revisions is in the branches. 0001 is also what create_all made before there were migrations.
LEGACY = {"0001": ("projection_0001", "{service}_0001"), "0002": ("projection_0002", "{service}_0001"),
          "0003": ("projection_0003", "{service}_0001"), "0004": ("projection_0004", "{service}_0001"),
          "0005": ("projection_0004", "{service}_0002")}
# a history's tables made before it had migrations (by create_all): stamped with the first revision
MADE_BEFORE = {"case": ("case_data_keys", ["case_0001"]),
               "obligations": ("obligations_cases", list(LEGACY["0001"])),
               "reporting": ("reporting_cases", list(LEGACY["0001"])),
               AUDIT: ("{service}_audit", ["audit_0001"])}


def version_table(service: str, history: str | None = None) -> str:
    return f"{service}_{history}_alembic_version" if history else f"{service}_alembic_version"


def config(service: str, connection: Connection, history: str | None = None) -> Config:
    """Alembic's configuration of a history run for `service` on `connection`: the service's own
    (with the projection branch for a consumer), or the shared `audit` one."""
    cfg = Config()
    if history == AUDIT:
        cfg.set_main_option("script_location", "shared.migrations:audit")
    else:
        cfg.set_main_option("script_location", f"services.{service}:migrations")
        if service in CONSUMERS:
            cfg.set_main_option("path_separator", "space")
            cfg.set_main_option("version_locations", f"services.{service}:migrations/versions "
                                                     f"shared.migrations:{PROJECTION}")
    cfg.attributes.update(connection=connection, service=service, version_table=version_table(service, history))
    return cfg


def prefix() -> str:
    """In a shared script: the service it runs for, which prefixes its tables."""
    return context.config.attributes["service"]


def upgrade(engine: Engine, service: str, history: str | None = None) -> None:
    """Migrate a history's tables to the newest revision of each branch, in one transaction.
    Tables made before the history had migrations are stamped first (`LEGACY`, `MADE_BEFORE`)."""
    with _one_at_a_time, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # replicas starting together: one migrates, the others wait, then find nothing to do;
            # the lock goes with the transaction
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                         {"key": zlib.crc32(version_table(service, history).encode())})
        cfg = config(service, conn, history)
        stamp = _stamp_of_older_tables(conn, service, history)
        if stamp:
            command.stamp(cfg, stamp, purge=True)
        command.upgrade(cfg, "heads")


def _stamp_of_older_tables(conn: Connection, service: str, history: str | None) -> list[str]:
    """The revisions to stamp a database with whose tables an older release made; [] if none."""
    table = version_table(service, history)
    tables = inspect(conn).get_table_names()
    if table in tables:
        current = conn.execute(text(f"SELECT version_num FROM {table}")).scalars().all()
        legacy = [r for r in current if r in LEGACY]
        return sorted({r.format(service=service) for r in LEGACY[legacy[0]]}) if legacy else []
    marker, revisions = MADE_BEFORE[history or service]
    return [r.format(service=service) for r in revisions] if marker.format(service=service) in tables else []


def run_migrations(target: MetaData) -> None:
    """What a history's env.py does: run the migrations on the connection `config` carries,
    comparing with `target`, all the history's tables."""
    conn = context.config.attributes["connection"]
    context.configure(
        connection=conn, target_metadata=target, version_table=context.config.attributes["version_table"],
        # SQLite changes most of a table only by copying it
        render_as_batch=conn.dialect.name == "sqlite",
        # a shared database also holds the other services' tables
        include_name=lambda name, type_, _: type_ != "table" or name in target.tables,
    )
    with context.begin_transaction():
        context.run_migrations()
