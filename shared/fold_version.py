"""Which version of the obligations fold a projection's derived rows were made with. When the
fold changes what it yields (`shared.obligations.FOLD_VERSION`), a service that starts marks
every case stale, and its consumer derives them again in the background: stored projections
converge without a manual step."""

from sqlalchemy import Column, Integer, MetaData, Table, select, update

from shared.obligations import FOLD_VERSION
from shared.projection import CaseProjection


def fold_version_table(prefix: str, metadata: MetaData) -> Table:
    """One row: the fold version the derived rows were made with (each service's migration 0004)."""
    return Table(f"{prefix}_fold", metadata,
                 Column("id", Integer, primary_key=True, autoincrement=False),
                 Column("version", Integer, nullable=False))


def converge(projection: CaseProjection, table: Table) -> int:
    """Mark every case stale when its rows come from another fold version; how many were marked.
    Marked before the version is recorded, so a crash in between marks them again next time."""
    with projection.engine.connect() as conn:
        stored = conn.execute(select(table.c.version)).scalar_one()
    if stored == FOLD_VERSION:
        return 0
    marked = projection.mark_stale()
    with projection.engine.begin() as conn:
        conn.execute(update(table).values(version=FOLD_VERSION))
    return marked
