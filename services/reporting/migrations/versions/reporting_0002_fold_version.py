"""On each case's responsibility rows, the fold version its obligations were derived with: cases
of another version are derived again, so the stored facts converge without a manual step.

Revision ID: reporting_0002
Revises: reporting_0001
Create Date: 2026-12-01

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "reporting_0002"
down_revision: str | Sequence[str] | None = "reporting_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("reporting_responsibility", sa.Column("fold_version", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("reporting_responsibility") as batch:
        batch.drop_column("fold_version")
