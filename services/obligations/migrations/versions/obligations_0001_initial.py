"""The obligations service's derived tables as create_all made them before there were migrations (its
store tables are the projection branch's: shared/migrations/projection).

Revision ID: obligations_0001
Revises:
Create Date: 2026-11-23

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "obligations_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("obligations",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "obligations_responsibility",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("valid_from", sa.Date, primary_key=True),
        sa.Column("valid_to", sa.Date),
        sa.Column("municipality", sa.String(3), nullable=False),
    )
    op.create_index("ix_obligations_responsibility_municipality", "obligations_responsibility", ["municipality"])
    op.create_table(
        "obligations",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("arises_on", sa.Date, nullable=False),
        sa.Column("basis", sa.String(16), nullable=False),
        sa.Column("done_on", sa.Date),
        sa.Column("municipality", sa.String(3)),
        sa.Column("caseworker", sa.String(64)),
        sa.Column("document", sa.JSON, nullable=False),
    )
    op.create_index("ix_obligations_due", "obligations", ["due"])


def downgrade() -> None:
    for table in ("obligations", "obligations_responsibility"):
        op.drop_table(table)
