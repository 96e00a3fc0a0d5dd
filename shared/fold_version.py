"""Which version of the obligations fold each case's derived rows were made with. When the fold
changes what it yields (`shared.obligations.FOLD_VERSION`), the cases derived by another version
are marked stale and the consumers derive them again in the background: stored projections
converge without a manual step, also when pods of the old version still derive during a
rolling upgrade (the check runs on start and again every `RECHECK`)."""

import time

from sqlalchemy import Column, Integer, Select, Table, or_, select

from shared.obligations import FOLD_VERSION  # read here at each use, so a test may change it

RECHECK = 3600.0  # seconds between looks for cases derived by another fold version


def column() -> Column:
    """On each case's responsibility rows: the fold version they were derived with (migration 0004)."""
    return Column("fold_version", Integer)


def derived_by_another(responsibility: Table) -> Select:
    """The cases whose rows another fold version made (or one from before versions were kept)."""
    version = responsibility.c.fold_version
    return select(responsibility.c.case_id).where(or_(version.is_(None), version != FOLD_VERSION))


class Watch:
    """When to look again: on the first call, then every `RECHECK` seconds."""

    def __init__(self) -> None:
        self._last: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < RECHECK:
            return False
        self._last = now
        return True
