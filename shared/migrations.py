"""Schema migrations (Alembic) of the projections' tables. Each consuming service keeps its own
history, in services/<service>/migrations, and its own version table, `<service>_alembic_version`,
so the services can share a database or use separate ones. A service's history covers the tables
of its projection, whose prefix is the service's name.

The services migrate when they start (`CaseProjection`); by hand:
`python -m services.admin migrate obligations` (or `reporting`). A new revision, from a
database at head:
`command.revision(config("obligations", conn), "what", rev_id="0003", autogenerate=True)`.
"""

import threading
import zlib

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, inspect, text

INITIAL = "0001"  # the tables as create_all made them before there were migrations
_one_at_a_time = threading.Lock()  # Alembic's `context` is one per process


def version_table(service: str) -> str:
    return f"{service}_alembic_version"


def config(service: str, connection: Connection) -> Config:
    """Alembic's configuration of the service's history, run on `connection`."""
    cfg = Config()
    cfg.set_main_option("script_location", f"services.{service}:migrations")
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, service: str) -> None:
    """Migrate the service's tables to the newest revision, in one transaction. A database that
    create_all made (the tables, no version table) is stamped with the initial revision first."""
    with _one_at_a_time, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # replicas starting together: one migrates, the others wait, then find nothing to do;
            # the lock goes with the transaction
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                         {"key": zlib.crc32(version_table(service).encode())})
        cfg = config(service, conn)
        tables = inspect(conn).get_table_names()
        if f"{service}_cases" in tables and version_table(service) not in tables:
            command.stamp(cfg, INITIAL)
        command.upgrade(cfg, "head")


def run_migrations(service: str, target: MetaData) -> None:
    """What a service's env.py does: run the migrations on the connection `config` carries,
    comparing with `target`, all the service's tables."""
    conn = context.config.attributes["connection"]
    context.configure(
        connection=conn, target_metadata=target, version_table=version_table(service),
        # SQLite changes most of a table only by copying it
        render_as_batch=conn.dialect.name == "sqlite",
        # a shared database also holds the other service's tables and the event store's
        include_name=lambda name, type_, _: type_ != "table" or name in target.tables,
    )
    with context.begin_transaction():
        context.run_migrations()

