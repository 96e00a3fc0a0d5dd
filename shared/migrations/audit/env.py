"""Alembic's environment of the audit log's history, run for each service with its name
(configured by shared.migrations)."""

from shared.audit import audit_table
from shared.migrations import prefix, run_migrations

run_migrations(audit_table(prefix()).metadata)
