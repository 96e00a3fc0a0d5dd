"""Alembic's environment of the obligations service's history: its derived tables, and the
projection branch's store tables (configured by shared.migrations)."""

from services.obligations.projection import metadata
from shared.migrations import run_migrations
from shared.projection import service_metadata

run_migrations(service_metadata("obligations", metadata))
