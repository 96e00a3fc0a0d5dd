"""The pages' charts: one metric month by month (for the trial's municipalities and the
comparison group; a what-if's obligations freed), drawn on the server as SVG (no JavaScript, nothing to load). A month without a
value (suppressed, or no data) is a gap: the line stops before it and starts again after it, so a
hidden number is never drawn as if it were there."""

import html
import math

from services.web.danish import MONTHS, amount

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 700, 20, 240  # the plot's edges
# blue solid and orange dashed: told apart without colour too
GROUPS = {"trial": ("Forsøgskommuner", "#0059b3", ""), "comparison": ("Sammenligningsgruppe", "#b34700", "6 4"),
          "freed": ("Sparede pligter", "#0059b3", "")}


def ticks(top: float, unit: str, bottom: float = 0) -> list[float]:
    """Round steps (1, 2 or 5 times a power of ten; of percent for a share) from 0, or from below
    `bottom` where that is negative, up to at least `top`."""
    scale = 100 if unit == "andel" else 1
    bottom = min(bottom, 0)
    if top <= 0 and bottom == 0:
        return [0.0, 1 / scale]
    rough = (max(top, 0) - bottom) * scale / 4
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    low, high = math.floor(bottom * scale / step + 1e-9), math.ceil(max(top, 0) * scale / step - 1e-9)
    return [k * step / scale for k in range(low, high + 1)]


def month_name(month: str) -> str:
    """2018-05 -> maj 2018"""
    year, number = month.split("-")
    return f"{MONTHS[int(number) - 1]} {year}"


def line_chart(months: list[str], values: dict[str, list[float | None]], unit: str, start: str, title: str,
               marked: str = "forsøget begynder", name: str = "graf") -> str:
    """The chart of `values` (per group of GROUPS, one value or None per month of `months`,
    consecutive months YYYY-MM), with the month `start` marked (`marked` says what begins);
    `name` tells its title apart from another chart's on the same page."""
    published = [v for series in values.values() for v in series if v is not None]
    marks = ticks(max(published, default=0), unit, min(published, default=0))

    def x(i: int) -> float:
        return LEFT + i * (RIGHT - LEFT) / max(len(months) - 1, 1)

    def y(v: float) -> float:
        return BOTTOM - (v - marks[0]) * (BOTTOM - TOP) / (marks[-1] - marks[0])

    parts = [f'<title id="{name}-titel">{html.escape(title)}, måned for måned</title>']
    for v in marks:
        parts.append(f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{RIGHT}" y2="{y(v):.1f}" stroke="#d9d9d9"/>'
                     f'<text class="tick-y" x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{amount(v, unit)}</text>')
    parts.append(f'<line x1="{LEFT}" y1="{y(0):.1f}" x2="{RIGHT}" y2="{y(0):.1f}" stroke="#454545"/>')
    # at most 8 month labels: every 1, 2, 3, 6 months, or a whole number of years
    every = next((k for k in (1, 2, 3, 6, 12) if len(months) / k <= 8), None) or 12 * math.ceil(len(months) / 96)
    for i, month in enumerate(months):
        if i % every == 0:
            parts.append(f'<text class="tick-x" x="{x(i):.1f}" y="{BOTTOM + 18}" text-anchor="middle">{month_name(month)}</text>')
    if start in months:
        at = x(months.index(start))
        parts.append(f'<line class="start" x1="{at:.1f}" y1="{TOP}" x2="{at:.1f}" y2="{BOTTOM}" stroke="#454545" '
                     f'stroke-dasharray="2 3"/><text x="{at + 4:.1f}" y="{TOP + 12}">{html.escape(marked)}</text>')
    for group, series in values.items():
        _, colour, dash = GROUPS[group]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(series):
            if v is None:  # a gap: the line breaks here
                runs.append([])
            else:
                runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
                parts.append(f'<circle class="{group}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>')
        for run in filter(None, runs):
            parts.append(f'<polyline class="{group}" fill="none" stroke="{colour}" stroke-width="2" '
                         f'stroke-dasharray="{dash}" points="{" ".join(run)}"/>')
    for k, group in enumerate(values):
        label, colour, dash = GROUPS[group]
        at = LEFT + 240 * k
        parts.append(f'<line x1="{at}" y1="{HEIGHT - 16}" x2="{at + 28}" y2="{HEIGHT - 16}" stroke="{colour}" '
                     f'stroke-width="2" stroke-dasharray="{dash}"/><text x="{at + 34}" y="{HEIGHT - 12}">{label}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="frisag-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-labelledby="{name}-titel" font-size="12" fill="#1a1a1a">{"".join(parts)}</svg>')
