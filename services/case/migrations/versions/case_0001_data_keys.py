"""The data keys of crypto-shredding, as create_all made them before there were migrations.

Revision ID: case_0001
Revises:
Create Date: 2026-12-02

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "case_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("case",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_data_keys",
        sa.Column("case_uuid", sa.Uuid, primary_key=True),
        sa.Column("wrapped_key", sa.LargeBinary),
        sa.Column("closed_on", sa.Date),
        sa.Column("erasure", sa.String(16)),
        sa.Column("erased_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_case_data_keys_closed_on", "case_data_keys", ["closed_on"])


def downgrade() -> None:
    op.drop_table("case_data_keys")
