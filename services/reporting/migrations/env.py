"""Alembic's environment of the reporting service's history (configured by shared.migrations)."""

from services.reporting.store import metadata
from shared.migrations import run_migrations
from shared.projection import service_metadata

run_migrations("reporting", service_metadata("reporting", metadata))
