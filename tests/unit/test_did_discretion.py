"""Discretion of the difference-in-differences row: it stands on its four cells (trial and
comparison group, before and during the trial), so it is published only when each of them has
at least 5 citizens: the smallest cell decides, the day before, on and after the threshold."""

import numpy as np
import pytest

from services.reporting.evaluation import DID_CELLS, DID_METRICS, Cell, _differences_in_differences


def share(citizens: int, hits: int) -> Cell:
    """A share over `citizens`, `hits` of them counted: each citizen's (numerator, denominator)."""
    contributions = np.array([(1.0 if i < hits else 0.0, 1.0) for i in range(citizens)])
    return Cell("share", float(hits), float(citizens), citizens, contributions=contributions)


@pytest.mark.parametrize("smallest, published", [(4, False), (5, True), (6, True)])
@pytest.mark.parametrize("small_cell", DID_CELLS)
def test_the_smallest_of_the_four_cells_decides_whether_the_did_is_published(smallest, published, small_cell):
    metric = DID_METRICS[0]
    totals = {key: {metric: share(smallest if key == small_cell else 40, 2)} for key in DID_CELLS}
    [row] = [r for r in _differences_in_differences(totals) if r.of == metric]
    assert row.suppressed is (not published)
    if published:
        assert row.n == smallest and row.value is not None
    else:
        assert row.n is None and row.value is None
