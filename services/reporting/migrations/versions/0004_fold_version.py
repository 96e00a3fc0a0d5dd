"""The fold version the stored obligations were derived with: a new version makes every case
stale on start, so the stored facts converge without a manual step.

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
        "reporting_fold",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.bulk_insert(sa.table("reporting_fold", sa.column("id", sa.Integer), sa.column("version", sa.Integer)),
                   [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("reporting_fold")
