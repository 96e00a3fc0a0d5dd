"""Cases the derivation failed for: the error, when, and under which release, so that one
case's failure stops no other and the case is derived again after a fix.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "obligations_failed_cases",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("last_sequence", sa.Integer, nullable=False),
        sa.Column("error", sa.String(500), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("release", sa.String(100), nullable=False),
        sa.Column("municipality", sa.String(3)),
    )
    op.create_index("ix_obligations_failed_cases_municipality", "obligations_failed_cases", ["municipality"])


def downgrade() -> None:
    op.drop_index("ix_obligations_failed_cases_municipality", table_name="obligations_failed_cases")
    op.drop_table("obligations_failed_cases")
