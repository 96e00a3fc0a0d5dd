"""Whether two sets of the reporting service's facts hold the same: the same clock and the same
rows in every table, whatever the codes each gave its names and the order within a day."""

import numpy as np

from services.reporting.facts import TABLES, FactParts


def same_facts(a: FactParts, b: FactParts) -> None:
    assert (a.tick, a.epoch, a.anonymous) == (b.tick, b.epoch, b.anonymous)
    for table in TABLES:
        left, right = a.rows(table), b.rows(table)
        assert set(left) == set(right), table
        # the same rows, in any order within a day: decode the codes, then sort
        decoded = [sorted(zip(*(_names(x, column, rows[column]) for column in sorted(rows)))) for x, rows in
                   ((a, left), (b, right))]
        assert decoded[0] == decoded[1], table


def _names(facts: FactParts, column: str, values: np.ndarray) -> list:
    codes = facts.codes.get(column)
    return [codes.names[v] if codes is not None and v >= 0 else v.item() for v in values]
