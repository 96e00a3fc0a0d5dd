"""A partial index of the stale cases: refresh looks for the few among many.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STALE = sa.text("version > derived_version")


def upgrade() -> None:
    op.create_index("ix_reporting_cases_stale", "reporting_cases", ["case_id"],
                    postgresql_where=STALE, sqlite_where=STALE)


def downgrade() -> None:
    op.drop_index("ix_reporting_cases_stale", table_name="reporting_cases")
