"""Alembic's environment of the case service's history (configured by shared.migrations): the
data keys beside the event store. The event store's own tables are the `eventsourcing` library's."""

from services.case.keys import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
