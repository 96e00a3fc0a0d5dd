"""Cases the derivation failed for: the error, when, and under which release, so that one
case's failure stops no other and the case is derived again after a fix.

Revision ID: projection_0004
Revises: projection_0003
Create Date: 2026-12-01

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrations import prefix

revision: str = "projection_0004"
down_revision: str | Sequence[str] | None = 'projection_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        f"{prefix()}_failed_cases",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("last_sequence", sa.Integer, nullable=False),
        sa.Column("error", sa.String(500), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("release", sa.String(100), nullable=False),
        sa.Column("municipality", sa.String(3)),
    )
    op.create_index(f"ix_{prefix()}_failed_cases_municipality", f"{prefix()}_failed_cases", ["municipality"])


def downgrade() -> None:
    op.drop_index(f"ix_{prefix()}_failed_cases_municipality", table_name=f"{prefix()}_failed_cases")
    op.drop_table(f"{prefix()}_failed_cases")
