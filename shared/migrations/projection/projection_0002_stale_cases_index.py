"""A partial index of the stale cases: refresh looks for the few among many.

Revision ID: projection_0002
Revises: projection_0001
Create Date: 2026-11-23

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrations import prefix

revision: str = "projection_0002"
down_revision: str | Sequence[str] | None = 'projection_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STALE = sa.text("version > derived_version")


def upgrade() -> None:
    op.create_index(f"ix_{prefix()}_cases_stale", f"{prefix()}_cases", ["case_id"],
                    postgresql_where=STALE, sqlite_where=STALE)


def downgrade() -> None:
    op.drop_index(f"ix_{prefix()}_cases_stale", table_name=f"{prefix()}_cases")
