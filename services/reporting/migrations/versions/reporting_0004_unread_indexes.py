"""The indexes no query of the reporting service reads: the facts are read by case, into memory
(services/reporting/facts.py), and every number is computed there. Each cost its table's every
insert and delete, and a million cases' worth of pages.

Revision ID: reporting_0004
Revises: reporting_0003
Create Date: 2026-12-06

"""
from collections.abc import Sequence

from alembic import op

revision: str = "reporting_0004"
down_revision: str | Sequence[str] | None = "reporting_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNREAD = [("ix_reporting_citizens_citizen", "reporting_citizens", "citizen"),
          ("ix_reporting_obligations_due", "reporting_obligations", "due"),
          ("ix_reporting_spells_benefit", "reporting_spells", "benefit"),
          ("ix_reporting_occurrences_day", "reporting_occurrences", "day")]


def upgrade() -> None:
    for index, table, _ in UNREAD:
        op.drop_index(index, table_name=table)


def downgrade() -> None:
    for index, table, column in UNREAD:
        op.create_index(index, table, [column])
