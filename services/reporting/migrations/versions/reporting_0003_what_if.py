"""The scenarios asked of `POST /what-if`, each with its answer once computed.

Revision ID: reporting_0003
Revises: reporting_0002
Create Date: 2026-12-03

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "reporting_0003"
down_revision: str | Sequence[str] | None = "reporting_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reporting_what_if",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("requested_by", sa.String(256), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.String(1000)),
    )


def downgrade() -> None:
    op.drop_table("reporting_what_if")
