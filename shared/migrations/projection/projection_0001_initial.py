"""The store tables every projection keeps, as create_all made them before there were migrations:
the positions, the cases' events and the cases. Run for each consumer, its name the prefix.

Revision ID: projection_0001
Revises: 
Create Date: 2026-11-23

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrations import prefix

revision: str = "projection_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("projection",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        f"{prefix()}_positions",
        sa.Column("consumer_group", sa.String(100), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("next_offset", sa.Integer, nullable=False),
    )
    op.create_table(
        f"{prefix()}_case_events",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("permitted_by", sa.String(8)),
    )
    op.create_table(
        f"{prefix()}_cases",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("last_sequence", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("derived_version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("cases", "case_events", "positions"):
        op.drop_table(f"{prefix()}_{table}")
