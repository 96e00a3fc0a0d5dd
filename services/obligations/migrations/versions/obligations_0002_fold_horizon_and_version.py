"""On each case's responsibility rows: how far ahead its obligations are stored (`folded_to`,
so a worklist beyond it is refused rather than partial) and the fold version they were derived
with (`fold_version`: cases of another version are derived again, so stored obligations
converge without a manual step).

Revision ID: obligations_0002
Revises: obligations_0001
Create Date: 2026-12-01

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "obligations_0002"
down_revision: str | Sequence[str] | None = "obligations_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("obligations_responsibility", sa.Column("folded_to", sa.Date))
    op.add_column("obligations_responsibility", sa.Column("fold_version", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("obligations_responsibility") as batch:
        batch.drop_column("fold_version")
        batch.drop_column("folded_to")
