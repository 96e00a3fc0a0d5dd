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


def per_citizen(kind: str, numerators: np.ndarray, denominators: np.ndarray) -> Cell:
    contributions = np.column_stack((numerators, denominators)).astype(float)
    return Cell(kind, float(numerators.sum()), float(denominators.sum()), len(numerators), contributions=contributions)


@pytest.mark.parametrize("citizens", [1500, 3000])  # resampled one by one, and past RESAMPLED_UP_TO from the normal limit
def test_the_did_interval_is_on_the_scale_of_its_metric_as_resampling_the_citizens_gives(citizens):
    """Issue 16: the interval of conversations per 100 months on benefit is in conversations per
    100 months, that of a share in shares, as an independent bootstrap of the four cells gives
    (the citizens of each resampled with replacement, 2,000 times). The estimates are far from 0
    in widths of the interval (conversations: some 30), so that a scale off by 1 % moves it out
    of tolerance."""
    rng = np.random.default_rng(16)
    days = rng.integers(200, 366, (4, citizens))
    talks = [rng.poisson(rate * days[i] / 30) for i, rate in enumerate((6.0, 2.0, 2.5, 2.0))]
    due = rng.integers(1, 6, (4, citizens))
    on_time = [rng.binomial(due[i], p) for i, p in enumerate((0.9, 0.5, 0.6, 0.55))]
    conversations, shares = "conversations_held_per_100_months", "obligations_on_time_share"
    totals = {key: {conversations: per_citizen("per_100_months", talks[i], days[i]),
                    shares: per_citizen("share", on_time[i], due[i])} for i, key in enumerate(DID_CELLS)}
    rows = {r.of: r for r in _differences_in_differences(totals)}

    per_100_months = 100 * 365.25 / 12  # conversations per day on benefit -> per 100 months (of 365.25 / 12 days)
    for metric, numerators, denominators, scale in ((conversations, talks, days, per_100_months),
                                                    (shares, on_time, due, 1.0)):
        rates = [scale * n.sum() / d.sum() for n, d in zip(numerators, denominators)]
        estimate = (rates[0] - rates[1]) - (rates[2] - rates[3])
        draws, resampling = np.zeros(2000), np.random.default_rng(1)
        for sign, n, d in zip((1, -1, -1, 1), numerators, denominators):
            picked = resampling.integers(0, citizens, (2000, citizens))
            draws += sign * scale * n[picked].sum(axis=1) / d[picked].sum(axis=1)
        low, high = np.percentile(draws, [2.5, 97.5])
        row = rows[metric]
        assert not row.suppressed and row.value == pytest.approx(estimate, abs=1e-3), metric
        assert abs(estimate) > 5 * (high - low), metric
        tolerance = 0.2 * (high - low)
        assert abs(row.ci95[0] - low) < tolerance and abs(row.ci95[1] - high) < tolerance, (metric, row.ci95, low, high)
